"""LiteRT (TFLite) flatbuffers, float32 or with float16 / int8 weights."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasarch import heads
from kerasarch.export.fold import fold_batchnorm
from kerasarch.export.serving import new_archive

FLATBUFFER_LIMIT = 2 ** 31  # a LiteRT flatbuffer holds at most 2 GiB
QUANTIZATIONS = ("float32", "float16", "int8")


def litert(
    model: keras.Model,
    path: str | os.PathLike,
    quantization: str = "float32",
    fold_bn: bool = False,
) -> Path:
    """Converts a model to a LiteRT (TFLite) flatbuffer.

    Args:
        model: The model; it takes raw pixels, as kerasarch models do.
        path: The `.tflite` file to write.
        quantization: `"float32"`, `"float16"` (weights stored as float16) or `"int8"`
            (dynamic-range: int8 weights, float activations).
        fold_bn: Fold BatchNorm into convolutions first.

    Returns:
        The file written.

    Raises:
        ValueError: Unknown quantization, or a model over the 2 GB flatbuffer limit.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Invalid value for argument `quantization`: {quantization!r}. Expected one of {QUANTIZATIONS}."
        )
    model = heads.main_output(model)  # auxiliary classifiers serve nothing
    if fold_bn:
        model = fold_batchnorm(model)
    bytes_per_weight = {"float32": 4, "float16": 2, "int8": 1}[quantization]
    size = sum(int(np.prod(w.shape)) for w in model.weights) * bytes_per_weight
    if size >= FLATBUFFER_LIMIT:
        raise ValueError(
            f"{model.name} has {size / 2 ** 30:.2f} GiB of {quantization} weights; a LiteRT "
            f"flatbuffer holds at most {FLATBUFFER_LIMIT / 2 ** 30:.2f} GiB. Use a smaller "
            "quantization ('float16', 'int8') or a smaller model."
        )
    # Through a SavedModel with a fixed batch of 1: converting the concrete function
    # directly captures the variables unreliably (NaN convolutions in TF 2.21).
    archive = new_archive(model)
    archive.add_endpoint(
        "serve", lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([1, *model.input_shape[1:]], tf.float32, name="images")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path
