"""Speed, measured honestly: a model in every runtime beside its peers, interleaved round by round.

`benchmark(name, batch_size, precision, runtime, against, rounds)` times the kerasarch model
in TensorFlow (fp32 / mixed_bfloat16, inference and a training step), LiteRT, ONNX Runtime
and OpenVINO, beside its keras.applications twin (or torchvision / timm, run by a python
that has PyTorch in a worker process that computes only in its turns) and a square matmul
of each precision, all in one process. Every contender runs
once per round, the order rotated between rounds; figures are ratios taken within a round,
summarized as median and spread over rounds (`timing.Spread`), with images/s beside them and
the model FLOP utilization (MFU) against the matmul of the same round. `format_result` prints
the table; `best_precision` is `precision="auto"`.

Modules: `timing` (interleaving and the ratio arithmetic), `runners` (what is timed),
`precision` (the auto-precision cache), `core`, `report`, `torch_peer` (the PyTorch worker's
parent side) and `torch_worker` (the worker script: standard library, numpy and PyTorch only).
"""

from kerasarch.benchmark.core import AGAINST, PRECISIONS, RUNTIME_CHOICES, BenchmarkResult, Row, benchmark
from kerasarch.benchmark.precision import best_precision, cache_path
from kerasarch.benchmark.report import format_result
from kerasarch.benchmark.timing import Contender, Spread, interleave, ratios

__all__ = [
    "AGAINST",
    "PRECISIONS",
    "RUNTIME_CHOICES",
    "BenchmarkResult",
    "Contender",
    "Row",
    "Spread",
    "benchmark",
    "best_precision",
    "cache_path",
    "format_result",
    "interleave",
    "ratios",
]
