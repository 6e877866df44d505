"""The `kerasarch weights list [MODEL]` command: every known weights source, from `_models.json`.

No TensorFlow import: the catalog (`kerasarch.weights_catalog`) is part of each model's
metadata (`ModelInfo.weights`), which `_models.json` holds.
"""

from __future__ import annotations

import argparse
import json

from kerasarch.cli_support import models_metadata, unknown_model_message

HELP = "every known pretrained-weights source of a model: its top-1, its figure's source, its status"
LIST_HELP = "list the weights sources of one model, or of every model that has some"
EPILOG = """A source is "verified" when a loader exists and a golden test (outputs of the reference
code) or the keras.applications equivalence test proves it; otherwise "not yet verified".
Top-1 is a published ImageNet-1k figure and where it is published ("-": none is known).

examples:
  kerasarch weights list resnet18
  kerasarch weights list bit_r50x1 --json
  kerasarch predict resnet18 --weights hf://timm/resnet18.a1_in1k photo.jpg"""
HEADER = ("source", "weights=", "top-1", "size", "figure from", "status", "note")


def status(source: dict) -> str:
    """`verified (<test>)` or `not yet verified`."""
    return f"verified ({source['verified_by']})" if source["verified_by"] else "not yet verified"


def rows(sources: list[dict]) -> list[tuple[str, ...]]:
    """One text row per source, in `HEADER`'s order."""
    table = []
    for source in sources:
        figure = source["accuracy"]
        table.append((
            source["kind"], source["argument"],
            "-" if figure is None else f"{figure['top1']:.2f}%",
            "-" if figure is None or figure["image_size"] is None else str(figure["image_size"]),
            "-" if figure is None else figure["source"],
            status(source), source["note"],
        ))
    return table


def format_sources(name: str, sources: list[dict]) -> str:
    """A model's sources as an aligned plain-text table under its name."""
    if not sources:
        return f"{name}: no published weights are known."
    table = [HEADER, *rows(sources)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join([name, *(f"  {line}" for line in lines)])


def _cmd_weights_list(args: argparse.Namespace) -> int:
    metadata = models_metadata()
    if args.model is not None and args.model not in metadata:
        raise ValueError(unknown_model_message(args.model))
    names = [args.model] if args.model else [n for n, info in metadata.items() if info["weights"]]
    if args.json:
        print(json.dumps({name: metadata[name]["weights"] for name in names}, indent=2))
        return 0
    print("\n\n".join(format_sources(name, metadata[name]["weights"]) for name in names))
    if args.model is None:
        without = [n for n, info in metadata.items() if not info["weights"]]
        print(f"\nNo published weights are known for: {', '.join(without)}.")
    return 0


def add_parser(sub, helps: dict[str, str]) -> None:
    """Adds `weights list` to the `kerasarch` subparsers `sub` (`helps`: the one-line helps)."""
    parser = sub.add_parser("weights", help=helps["weights list"],
                            description=HELP[:1].upper() + HELP[1:] + ".")
    commands = parser.add_subparsers(dest="weights_command", title="commands", metavar="COMMAND",
                                     parser_class=type(parser))
    parser.set_defaults(func=lambda args: _print_usage(parser))
    listing = commands.add_parser("list", help=LIST_HELP, epilog=EPILOG,
                                  description=LIST_HELP[:1].upper() + LIST_HELP[1:] + ".")
    listing.add_argument("model", nargs="?", default=None,
                         help="a registry name (`kerasarch models` lists them); default every model")
    listing.add_argument("--json", action="store_true", help="print the sources as JSON")
    listing.set_defaults(func=_cmd_weights_list)


def _print_usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
