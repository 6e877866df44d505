"""The `kerasarch` command: train, evaluate, predict, export, models, info, weights, summary, compare, data.

The parser, `--help`, `--version`, `models`, `info` and `weights list` import neither TensorFlow nor Keras:
the registry's metadata is read from `_models.json` (regenerate it with
`kerasarch models --write-metadata`). Commands that need TensorFlow import it inside
themselves, after `main` has quieted its start-up messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kerasarch.cli_analysis import add_parsers as add_analysis_parsers
from kerasarch.cli_bench import HELP as BENCHMARK_HELP
from kerasarch.cli_bench import add_parser as add_benchmark_parser
from kerasarch.cli_export import add_parser as add_export_parser
from kerasarch.cli_export import already_exported
from kerasarch.cli_selftrain import HELP as SELFTRAIN_HELP
from kerasarch.cli_selftrain import MPL_HELP
from kerasarch.cli_selftrain import add_parser as add_selftrain_parser
from kerasarch.cli_support import (
    METADATA_FILE,
    cli_message,
    configure_logging,
    live_metadata,
    models_metadata,
    start_tensorflow,
    unknown_model_message,
    version,
    write_metadata,
)
from kerasarch.cli_weights import HELP as WEIGHTS_HELP
from kerasarch.cli_weights import add_parser as add_weights_parser
from kerasarch.extras import MissingExtraError
from kerasarch.train import config as train_config

COMMANDS = {
    "train": "train a model (default: LeNet-5 on digits, offline)",
    "evaluate": "top-1/top-5, per-class accuracy and a confusion matrix of a run or model",
    "predict": "the top-k labels of image files, from a run, a .keras file or a model name",
    "export": "export for TF Serving (SavedModel), devices (LiteRT), ONNX Runtime or OpenVINO",
    "models": "list the registered models",
    "info": "show a model's metadata as JSON",
    "weights list": WEIGHTS_HELP,
    "summary": "parameters, FLOPs (total and per layer), memory, depth and published top-1 of a model",
    "compare": "a table and a top-1 vs GFLOPs bubble chart of every registered model",
    "benchmark": BENCHMARK_HELP,
    "noisy-student": SELFTRAIN_HELP,
    "mpl": MPL_HELP,
    "data show": "save a labelled grid of a dataset's images as PNG",
}
EXAMPLES = """examples:
  kerasarch train                          LeNet-5 on the built-in digits, offline
  kerasarch models                         the model names train/predict/info take
  kerasarch evaluate runs/RUN              accuracy of a run's model on its test split
  kerasarch predict runs/RUN photo.jpg     top-5 labels of a photo
  kerasarch --verbose COMMAND ...          with TensorFlow's start-up messages and debug logs"""
def _sentence(text: str) -> str:
    """`text` as a sentence: first letter upper-case (the rest as written), a final period."""
    return text[:1].upper() + text[1:] + "."


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, unless its help already speaks of it or it is None/False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def model_table(markdown: bool = True, live: bool = False) -> str:
    """The table of registered models (the README's model table).

    Args:
        markdown: Markdown table if True, else aligned plain text.
        live: Read the live registry (imports Keras and every family, those registered
            at run time included) instead of the package's metadata file, which a test
            keeps equal to the registry and which needs no Keras.

    Returns:
        The table as text.
    """
    header = ("model", "paper (year)", "input", "params (total)", "trainable", "ImageNet weights")
    rows = []
    for name, info in (live_metadata() if live else models_metadata()).items():
        h, w, c = info["input_shape"]
        rows.append((
            f"`{name}`" if markdown else name,
            f"{info['paper'].split(' (')[0]} ({info['year']})",
            f"{h}x{w}x{c}",
            f"{info['params']['total']:,}",
            f"{info['params']['trainable']:,}",
            "yes" if info["imagenet_weights"] else "-",
        ))
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---|---|---:|---:|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in (header, *rows))


def _cmd_train(args: argparse.Namespace) -> int:
    from kerasarch import train

    result = train.fit(**train_config.from_args(args))
    print(json.dumps({"run_dir": str(result.run_dir), **result.metrics}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from kerasarch.train import evaluate

    report = evaluate.evaluate(
        args.target, dataset=args.dataset, split=args.split, image_size=args.image_size,
        batch_size=args.batch_size, data_dir=args.data_dir, out=args.out,
    )
    print(evaluate.summary(report))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from kerasarch import predict

    if not Path(args.target).exists() and args.target not in models_metadata():
        raise ValueError(
            f"MODEL_OR_RUN {args.target!r} is not a run folder, a .keras file or a model name. "
            + unknown_model_message(args.target).split(". ", 1)[1]
        )
    predictor = predict.load_predictor(args.target, weights=args.weights, image_size=args.image_size)
    failures = 0
    for result in predictor.predict_files(args.images, top_k=args.top_k, batch_size=args.batch_size):
        if result.error:
            failures += 1
            print(f"kerasarch: cannot read image {result.path}: {result.error}", file=sys.stderr)
            continue
        print(result.path)
        width = max(len(label) for label, _ in result.top)
        for rank, (label, score) in enumerate(result.top, 1):
            print(f"  {rank}. {label.ljust(width)}  {score:.4f}")
    return 1 if failures else 0


def _cmd_models(args: argparse.Namespace) -> int:
    if args.write_metadata:
        from kerasarch import registry

        print(f"Wrote the registry's metadata to {write_metadata()}")
        stub = Path(__file__).with_name("__init__.pyi")
        stub.write_text(registry.package_stub())
        print(f"Wrote the package's type stub (builder signatures for IDEs) to {stub}")
        for page in _generated_pages():
            print(f"Regenerated the model tables of {page}")
        return 0
    print(model_table(markdown=args.markdown))
    return 0


def _replace_block(path: Path, marker: str, content: str) -> None:
    text = path.read_text()
    start = text.index(f"<!-- {marker}:start -->") + len(f"<!-- {marker}:start -->")
    end = text.index(f"<!-- {marker}:end -->")
    path.write_text(f"{text[:start]}\n{content}\n{text[end:]}")


def _generated_pages() -> list[Path]:
    """Rewrites the registry-generated blocks of a source checkout's README and docs.

    Returns the pages written; none where the package is installed without its sources.
    """
    from kerasarch import registry

    root = Path(__file__).resolve().parents[1]
    if not (root / "docs" / "api.md").exists():
        return []
    table = model_table(markdown=True, live=True)
    pages = [root / "README.md", root / "docs" / "models.md"]
    for page in pages:
        _replace_block(page, "models", table)
    _replace_block(root / "docs" / "api.md", "architectures", registry.api_reference())
    return [*pages, root / "docs" / "api.md"]


def _cmd_info(args: argparse.Namespace) -> int:
    if args.name not in models_metadata():
        raise ValueError(unknown_model_message(args.name))
    print(json.dumps(models_metadata()[args.name], indent=2))
    return 0


def _cmd_data_show(args: argparse.Namespace) -> int:
    from kerasarch import data

    dataset, info = data.load(
        args.name, args.split, image_size=args.image_size, batch_size=args.rows * args.cols,
        training=args.training, seed=args.seed, data_dir=args.data_dir,
        mixup_alpha=args.mixup, cutmix_alpha=args.cutmix,
    )
    out = args.out or f"{args.name.replace('/', '_').replace(':', '_')}-{args.split}.png"
    data.show_batch(dataset, info.class_names, rows=args.rows, cols=args.cols, path=out)
    print(f"{info.name} [{info.split}]: {info.num_examples} images, {info.num_classes} classes; "
          f"grid saved to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `kerasarch` command."""
    parser = _Parser(
        prog="kerasarch",
        description="Classic CNN architectures in Keras 3. Commands: "
        + ", ".join(COMMANDS) + ".\n`kerasarch COMMAND --help` shows a command's options.",
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"kerasarch {version()}")
    parser.add_argument("--verbose", action="store_true", dest="debug",
                        help="show TensorFlow's start-up messages and kerasarch's debug log")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND",
                                parser_class=_Parser)
    train = sub.add_parser("train", help="train a model (default: LeNet-5 on digits, offline)")
    train_config.add_arguments(train)
    train.set_defaults(func=_cmd_train)
    train.description = _sentence(COMMANDS["train"])
    train.epilog = "MODEL is a registry name: `kerasarch models` lists them, `kerasarch info MODEL` " \
        "shows one.\nAn existing --run-dir is resumed."
    _add_models_and_info(sub)
    add_weights_parser(sub, COMMANDS)
    add_export_parser(sub, COMMANDS)
    _add_evaluate(sub)
    _add_predict(sub)
    add_analysis_parsers(sub, COMMANDS)
    add_benchmark_parser(sub, COMMANDS)
    add_selftrain_parser(sub, COMMANDS)
    _add_data(sub)
    return parser


def _add_models_and_info(sub) -> None:
    models = sub.add_parser("models", help=COMMANDS["models"], description=COMMANDS["models"] + ".")
    models.add_argument("--markdown", action="store_true", help="print a Markdown table")
    models.add_argument("--write-metadata", action="store_true",
                        help=f"regenerate {METADATA_FILE.name} (what models/info read) from the "
                        "live registry; for developers after adding a model")
    models.set_defaults(func=_cmd_models)
    info = sub.add_parser("info", help=COMMANDS["info"], description=COMMANDS["info"] + ".")
    info.add_argument("name", help="a registry name (`kerasarch models` lists them)")
    info.set_defaults(func=_cmd_info)


def _add_evaluate(sub) -> None:
    evaluate = sub.add_parser("evaluate", help=COMMANDS["evaluate"],
                              description=_sentence(COMMANDS["evaluate"]))
    evaluate.add_argument("target", help="a run folder (its best.keras) or a .keras model file")
    evaluate.add_argument("--dataset", default=None,
                          help="digits, a tfds name or folder:PATH (default: the run's dataset)")
    evaluate.add_argument("--split", default=None,
                          help="split to evaluate (default: the run's test, else validation split)")
    evaluate.add_argument("--image-size", type=int, default=None,
                          help="input size (default: the model's input size)")
    evaluate.add_argument("--batch-size", type=int, default=64, help="evaluation batch size")
    evaluate.add_argument("--data-dir", default=None,
                          help="tfds data dir (default: the run's, else $KERASARCH_DATA_DIR)")
    evaluate.add_argument("--out", default=None,
                          help="folder for evaluation.json and the figures (default: the run "
                          "folder, or the current folder for a model file)")
    evaluate.set_defaults(func=_cmd_evaluate)


def _add_predict(sub) -> None:
    predict = sub.add_parser(
        "predict", help=COMMANDS["predict"], description=_sentence(COMMANDS["predict"]),
        epilog="examples:\n  kerasarch predict runs/RUN photo.jpg\n"
        "  kerasarch predict resnet50 --weights imagenet *.jpg",
    )
    predict.add_argument("target", metavar="MODEL_OR_RUN",
                         help="a run folder (its best.keras), a .keras file, or a registry name "
                         "with --weights")
    predict.add_argument("images", metavar="IMAGE", nargs="+",
                         help="image files (JPEG, PNG, GIF, BMP, WebP)")
    predict.add_argument("--top-k", type=int, default=5, help="labels to print per image")
    predict.add_argument("--weights", default=None,
                         help="with a registry name: imagenet or a weights file")
    predict.add_argument("--image-size", type=int, default=None,
                         help="input size (default: the run's image size, else the model's input)")
    predict.add_argument("--batch-size", type=int, default=32, help="images per model call")
    predict.set_defaults(func=_cmd_predict)


def _add_data(sub) -> None:
    data_parser = sub.add_parser("data", help="look at a dataset (data show)",
                                 description="Look at a dataset.")
    data_cmd = data_parser.add_subparsers(dest="data_command", title="commands", metavar="COMMAND",
                                          parser_class=_Parser)
    data_parser.set_defaults(func=lambda args: _print_help(data_parser))
    show = data_cmd.add_parser("show", help=COMMANDS["data show"],
                               description=_sentence(COMMANDS["data show"]))
    show.add_argument("name", help="digits, a tfds name (imagenette/160px-v2) or folder:PATH")
    show.add_argument("--split", default="train", help="split to show")
    show.add_argument("--image-size", type=int, default=None,
                      help="image size (default: the dataset's default size)")
    show.add_argument("--training", action="store_true", help="show the training transform")
    show.add_argument("--mixup", type=float, default=0.0, help="MixUp alpha (with --training)")
    show.add_argument("--cutmix", type=float, default=0.0, help="CutMix alpha (with --training)")
    show.add_argument("--rows", type=int, default=5, help="grid rows")
    show.add_argument("--cols", type=int, default=5, help="grid columns")
    show.add_argument("--seed", type=int, default=0, help="seed of the training transform")
    show.add_argument("--data-dir", default=None, help="tfds data dir (default: $KERASARCH_DATA_DIR)")
    show.add_argument("--out", default=None, help="PNG path (default: NAME-SPLIT.png)")
    show.set_defaults(func=_cmd_data_show)


def _print_help(parser: argparse.ArgumentParser) -> int:
    """Help for a command given without its subcommand: exit status 2, like a usage error."""
    parser.print_help()
    return 2


# --- running a command: TensorFlow's start-up, logging, errors ------------------------------

NEEDS_TENSORFLOW = frozenset({"train", "evaluate", "predict", "export", "summary", "compare", "data",
                              "benchmark", "noisy-student", "mpl"})


def _command_parser(parser: argparse.ArgumentParser, command: str | None):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2: usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return _print_help(parser)
    configure_logging(args.debug)
    # `train` without MODEL: the default (or, resuming, the run's); only a given name is checked
    checked = ("train", "summary", "benchmark", "noisy-student", "mpl")
    model = getattr(args, "model", None) if args.command in checked else None
    if model is not None and model not in models_metadata():
        print(f"kerasarch: error: {unknown_model_message(model)}", file=sys.stderr)
        return 2
    try:
        if args.command == "train":
            train_config.refuse_contradictions(train_config.from_args(args))
        if args.command == "export" and already_exported(args):
            return 0
        if args.command in NEEDS_TENSORFLOW and getattr(args, "data_command", "") is not None:
            start_tensorflow(args.debug)
        return args.func(args)
    except (ValueError, OSError, MissingExtraError) as error:
        message = cli_message(str(error), _command_parser(parser, args.command))
        print(f"kerasarch: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
