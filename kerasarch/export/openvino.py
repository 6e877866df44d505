"""OpenVINO IR (`.xml` + `.bin`) files for the OpenVINO runtime, normalization included.

Converter: Keras' own `model.export(format="openvino")`, which on the TensorFlow backend
hands the traced inference function to `openvino.convert_model`. It gives a correct graph
for every kerasarch layer tried (in-graph `Normalize`, the training-only augmentation
wrapper, `FoldedBatchNorm`): OpenVINO agrees with Keras to a relative 1e-6 on real photos
(tests/test_runtimes.py). The weights are written as float32 (Keras serializes without
OpenVINO's default float16 compression), so the IR computes what the Keras model does.

The input is the Keras model's: float32 pixels `[batch, height, width, channels]` in
[0, 255], any batch. Decoding and the evaluation resize / crop stay TensorFlow-only.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from kerasarch.export.fold import fold_batchnorm
from kerasarch.export.onnx import float32_model, input_signature
from kerasarch.extras import require

PRECISIONS = ("fp32", "bf16")


def openvino(model: keras.Model, path: str | os.PathLike, fold_bn: bool = False) -> Path:
    """Converts a model to OpenVINO IR: `path` (`.xml`, the graph) and the `.bin` beside it.

    Args:
        model: The model; it takes raw pixels, as kerasarch models do.
        path: The `.xml` file to write.
        fold_bn: Fold BatchNorm into convolutions first.

    Returns:
        The `.xml` file written.

    Raises:
        MissingExtraError: openvino is not installed (the `runtimes` extra).
        ValueError: A path that does not end in `.xml`.
    """
    require("openvino", "OpenVINO export")
    path = Path(path)
    if path.suffix != ".xml":
        raise ValueError(f"Invalid value for argument `path`: {str(path)!r}. "
                         "Expected a file ending in .xml.")
    model = float32_model(fold_batchnorm(model) if fold_bn else model)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="openvino", verbose=False, input_signature=input_signature(model))
    return path


def bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin computes in bfloat16 on this machine (AVX-512 BF16 / AMX)."""
    ov = require("openvino", "OpenVINO inference")
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_model(path: str | os.PathLike, precision: str = "fp32", latency: bool = True):
    """Compiles an IR file for the CPU and returns a function running it on a batch.

    Args:
        path: The `.xml` file.
        precision: `"fp32"`, or `"bf16"` (OpenVINO's inference precision hint; only where
            `bf16_supported()`).
        latency: OpenVINO's LATENCY performance hint (one request at a time, all cores on
            it), else THROUGHPUT.

    Returns:
        `predict(images) -> numpy outputs`, taking a float32 (or uint8) numpy batch.

    Raises:
        MissingExtraError: openvino is not installed (the `runtimes` extra).
        ValueError: Unknown precision, or bf16 on a CPU without bfloat16 support.
    """
    ov = require("openvino", "OpenVINO inference")
    if precision not in PRECISIONS:
        raise ValueError(f"Invalid value for argument `precision`: {precision!r}. "
                         f"Expected one of {PRECISIONS}.")
    if precision == "bf16" and not bf16_supported():
        raise ValueError("precision='bf16': this CPU has no bfloat16 support OpenVINO can use "
                         "(AVX-512 BF16 or AMX); use 'fp32'.")
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "PERFORMANCE_HINT": "LATENCY" if latency else "THROUGHPUT"}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()

    def predict(images: np.ndarray) -> np.ndarray:
        return request.infer([np.asarray(images, np.float32)])[0]

    return predict
