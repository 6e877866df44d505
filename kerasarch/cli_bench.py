"""The `kerasarch benchmark` command (no TensorFlow import until it runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kerasarch.cli_support import models_metadata, unknown_model_message

# kerasarch.benchmark's choices, written out: importing it loads Keras (a test keeps them equal)
PRECISIONS = ("fp32", "bf16", "auto")
RUNTIME_CHOICES = ("tf", "litert", "onnx", "openvino", "all")
AGAINST = ("keras", "torch")
HELP = "inference (and training) images/s of a model in each runtime, as ratios to its peers"
EPILOG = """Every contender runs once per round, the order rotated between rounds, all in this process
(the torch peers in a PyTorch worker process that runs only in its turns); ratios are taken
within a round and printed as median [min-max] over rounds. MFU is the
model's FLOP/s over a square matmul's FLOP/s measured in the same rounds. --precision auto
measures fp32 against mixed_bfloat16 once per model, batch and machine, and caches the answer.

examples:
  kerasarch benchmark resnet50 --batch-size 16              kerasarch vs keras.applications ResNet50
  kerasarch benchmark mobilenet_v2 --runtime all            which runtime is fastest here
  kerasarch benchmark resnet18 --precision auto --against torch --torch-python ~/torch/bin/python"""


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from kerasarch import benchmark

    if args.model not in models_metadata():
        raise ValueError(unknown_model_message(args.model))
    result = benchmark.benchmark(
        args.model, batch_size=args.batch_size, precision=args.precision, runtime=args.runtime,
        against=args.against, rounds=args.rounds, image_size=args.image_size,
        target_seconds=args.seconds, progress=not args.no_progress, torch_python=args.torch_python,
    )
    print(benchmark.format_result(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        print(f"Wrote {args.json}")
    return 0


def add_parser(sub, helps: dict[str, str]) -> None:
    """Adds `benchmark` to the `kerasarch` subparsers `sub` (`helps`: the one-line helps)."""
    parser = sub.add_parser("benchmark", help=helps["benchmark"],
                            description=helps["benchmark"][:1].upper() + helps["benchmark"][1:] + ".",
                            epilog=EPILOG)
    parser.add_argument("model", help="a registry name (`kerasarch models` lists them)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per call")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32, bf16 (mixed_bfloat16) or auto (the faster, measured and cached)")
    parser.add_argument("--runtime", default="tf", choices=RUNTIME_CHOICES,
                        help="tf (inference and training), litert, onnx, openvino, or all of them "
                        "(onnx, openvino: the `runtimes` extra)")
    parser.add_argument("--against", default="keras", choices=AGAINST,
                        help="peer: the keras.applications twin, or torchvision / timm in fp32 and bf16 "
                        "(needs a python with PyTorch: --torch-python)")
    parser.add_argument("--torch-python", default=None, metavar="PATH",
                        help="with --against torch: a python that has torch and torchvision (default: "
                        "$KERASARCH_TORCH_PYTHON, else this python if they are installed here)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--image-size", type=int, default=None,
                        help="square input size (default: the model's native size)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="about how long each contender runs per round")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_benchmark)
