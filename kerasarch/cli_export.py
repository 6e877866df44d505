"""The `kerasarch export` command: a run or a .keras file as TF Serving, LiteRT, ONNX or OpenVINO.

`kerasarch export RUN` with no other option names the serving export training already made,
before TensorFlow loads; everything else imports TensorFlow inside `run`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_MAX_PIXELS = 50_000_000  # kerasarch.export.DEFAULT_MAX_PIXELS (not imported: it loads TF)


def _run_serving_export(run_dir: Path) -> str | None:
    """The run's TF Serving export of best.keras, as `metrics.json` records it, if it exists."""
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        return None
    path = (json.loads(metrics.read_text()).get("serving") or {}).get("path")
    return path if path and Path(path).is_dir() else None


def already_exported(args: argparse.Namespace) -> bool:
    """Whether `kerasarch export RUN`, with no other option, names the export training made.

    One serving export per run: training made it from best.keras already. Answered before
    TensorFlow loads, so the answer is immediate.
    """
    target = Path(args.target)
    plain = not (args.fold_batchnorm or args.image_size or args.top_k != 5
                 or args.max_pixels != DEFAULT_MAX_PIXELS)
    if not (target.is_dir() and plain and args.format == "saved_model" and args.out is None):
        return False
    served = _run_serving_export(target)
    if served:
        print(f"{args.target} already has its TF Serving export of best.keras: {served}. "
              "Give --out DIR (or other export options) to write another.")
    return bool(served)


def run(args: argparse.Namespace) -> int:
    """Export a run folder (its best.keras) or a .keras file in the chosen format."""
    import keras

    from kerasarch import export, heads

    target = Path(args.target)
    class_names, image_size, crop = None, args.image_size, 0.875
    if target.is_dir():
        record = json.loads((target / "config.json").read_text())
        resolved = record.get("resolved", {})
        class_names = record.get("classes")
        image_size = image_size or resolved.get("image_size") or record["config"].get("image_size")
        crop = resolved.get("crop_fraction") or (
            1.0 if record["config"].get("dataset") == "digits" else crop)
        target = target / "best.keras" if (target / "best.keras").exists() else target / "last.keras"
        default_out = Path(args.target) / "export"
    else:
        default_out = Path("export")
    model = heads.main_output(keras.saving.load_model(target))  # auxiliary heads serve nothing
    if args.fold_batchnorm:
        model = export.fold_batchnorm(model)
    out = Path(args.out) if args.out else default_out
    if args.format == "saved_model":
        path = export.saved_model(
            model, out, class_names=class_names, top_k=min(args.top_k, model.output_shape[-1]),
            image_size=image_size, max_pixels=args.max_pixels, crop_fraction=crop,
        )
    elif args.format == "onnx":
        path = export.onnx(model, out / f"{model.name}.onnx")
    elif args.format == "openvino":
        path = export.openvino(model, out / f"{model.name}.xml")
    else:
        path = export.litert(model, out / f"{model.name}-{args.quantization}.tflite",
                             quantization=args.quantization)
    path = Path(path)
    files = list(path.rglob("*")) if path.is_dir() else [path, path.with_suffix(".bin")]  # IR: .xml + .bin
    size = sum(f.stat().st_size for f in files if f.is_file())
    print(f"Exported {target} as {args.format} to {path} ({size / 2 ** 20:.1f} MiB)")
    return 0


def add_parser(sub, commands: dict[str, str]) -> None:
    """Add `kerasarch export` to the command's subparsers."""
    exporter = sub.add_parser("export", help=commands["export"], description=commands["export"] + ".")
    exporter.add_argument("target", help="a run folder or a .keras model file")
    exporter.add_argument("--format", default="saved_model",
                          choices=("saved_model", "litert", "onnx", "openvino"),
                          help="export format (onnx, openvino: the `runtimes` extra)")
    exporter.add_argument("--out", default=None,
                          help="TF Serving base path / LiteRT, ONNX, OpenVINO folder (default: "
                          "RUN_DIR/export, or ./export for a model file)")
    exporter.add_argument("--quantization", default="float32", choices=("float32", "float16", "int8"),
                          help="LiteRT weight precision")
    exporter.add_argument("--fold-batchnorm", action="store_true",
                          help="fold BatchNorm into the convolutions first (inference only)")
    exporter.add_argument("--top-k", type=int, default=5, help="labels the serving signature returns")
    exporter.add_argument("--image-size", type=int, default=None,
                          help="input size of the serving signature (default: the run's)")
    exporter.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                          help="largest image (from its header) the string signature accepts")
    exporter.set_defaults(func=run)
