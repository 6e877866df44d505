"""The `kerasarch summary` and `kerasarch compare` commands (no TensorFlow import until they run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kerasarch.cli_support import models_metadata, unknown_model_message


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _cmd_summary(args: argparse.Namespace) -> int:
    from kerasarch import analysis

    if args.model not in models_metadata():
        raise ValueError(unknown_model_message(args.model))
    result = analysis.summary(args.model, image_size=args.image_size)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(analysis.format_summary(result, layers=None if args.all_layers else 10))
    if args.plot:
        import keras

        from kerasarch import registry

        keras.utils.plot_model(registry.get_model(args.model), to_file=args.plot, show_shapes=True,
                               show_layer_names=True)
        print(f"Architecture diagram written to {args.plot}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from kerasarch import comparison

    if args.write_docs:
        if args.models:
            raise ValueError("--write-docs regenerates the table of every registered model; "
                             f"give no MODEL names (got {' '.join(args.models)}).")
        written = comparison.write_docs(remeasure=args.remeasure)
    else:
        out = Path(args.out)
        # A source checkout's committed measurements seed a new folder's cache.
        cached = out / "compare.json" if (out / "compare.json").exists() else \
            comparison.RESULTS / "compare.json"
        data = comparison.update(comparison.load(cached), args.models, remeasure=args.remeasure)
        written = comparison.write(data, out)
        print(comparison.markdown(data))
    print("Wrote " + ", ".join(str(p) for p in written))
    return 0


def add_parsers(sub, helps: dict[str, str]) -> None:
    """Adds `summary` and `compare` to the `kerasarch` subparsers `sub` (`helps`: one-line helps)."""
    summary = sub.add_parser("summary", help=helps["summary"], description=_sentence(
        helps["summary"]) + " FLOPs are multiply-adds x2, counted by TensorFlow's profiler.")
    summary.add_argument("model", help="a registry name (`kerasarch models` lists them)")
    summary.add_argument("--image-size", type=int, default=None,
                         help="measure at this square input size (default: the native input)")
    summary.add_argument("--all-layers", action="store_true",
                         help="list every layer's FLOPs (default: the 10 costliest)")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.add_argument("--plot", default=None, metavar="PATH",
                         help="also write the architecture diagram (keras.utils.plot_model; needs "
                         "pydot and Graphviz) to PATH (.png, .svg, .pdf)")
    summary.set_defaults(func=_cmd_summary)
    compare = sub.add_parser(
        "compare", help=helps["compare"], description=_sentence(helps["compare"]),
        epilog="FLOPs are measured once per model and cached in OUT/compare.json (a source "
        "checkout's\nbenchmarks/results/compare.json seeds it); only models missing from it are built.")
    compare.add_argument("models", metavar="MODEL", nargs="*",
                         help="registry names (default: every registered model)")
    compare.add_argument("--out", default="compare",
                         help="folder for compare.md, .csv, .json (the cache), .png and .svg")
    compare.add_argument("--remeasure", action="store_true", help="measure every model again")
    compare.add_argument("--write-docs", action="store_true",
                         help="regenerate benchmarks/results/compare.*, docs/images/compare.* and the "
                         "README/docs block (a source checkout; for developers after adding a model)")
    compare.set_defaults(func=_cmd_compare)
