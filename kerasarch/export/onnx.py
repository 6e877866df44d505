"""ONNX files for ONNX Runtime: the model's forward pass, normalization included.

Converter: Keras' own `model.export(format="onnx")`, which on the TensorFlow backend traces
the inference function and hands it to tf2onnx. It gives a correct graph for every kerasarch
layer tried (the in-graph `Normalize`, the training-only augmentation wrapper, which traces to
nothing at inference, `FoldedBatchNorm`): ONNX Runtime agrees with Keras to a relative 1e-6 on
real photos (tests/test_runtimes.py). Converting the SavedModel with tf2onnx's command line
gives the same graph with a second copy of the weights on disk on the way, so it is not used.

What the file holds: float32 `images [batch, height, width, channels]` pixels in [0, 255]
(the Keras model's own input; feed uint8 photos cast to float32), any batch size, and the
model's output. Decoding and the evaluation resize / crop of the SavedModel's signatures
are TensorFlow-only and stay out (see docs/serving.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from kerasarch.export.fold import fold_batchnorm
from kerasarch.extras import require

INPUT_NAME = "images"


def input_signature(model: keras.Model) -> list:
    """The export's input: float32 pixels, any batch, the model's height, width and channels."""
    import tensorflow as tf

    return [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_NAME)]


def float32_model(model: keras.Model) -> keras.Model:
    """`model` itself, or a float32 copy (same weights) where it was built under mixed precision.

    ONNX and OpenVINO exports take float32 graphs (Keras' ONNX export requires the float32
    policy); a model trained with `mixed_bfloat16` keeps float32 weights, so the copy loses
    nothing.
    """
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def onnx(model: keras.Model, path: str | os.PathLike, fold_bn: bool = False,
         opset: int | None = None) -> Path:
    """Converts a model to an ONNX file (float32, any batch size).

    Args:
        model: The model; it takes raw pixels, as kerasarch models do.
        path: The `.onnx` file to write.
        fold_bn: Fold BatchNorm into convolutions first.
        opset: ONNX opset; default tf2onnx's.

    Returns:
        The file written.

    Raises:
        MissingExtraError: tf2onnx or onnx is not installed (the `runtimes` extra).
        ValueError: A path that does not end in `.onnx`.
    """
    require("tf2onnx", "ONNX export")
    require("onnx", "ONNX export")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"Invalid value for argument `path`: {str(path)!r}. "
                         "Expected a file ending in .onnx.")
    model = float32_model(fold_batchnorm(model) if fold_bn else model)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="onnx", verbose=False, input_signature=input_signature(model),
                 opset_version=opset)
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session of an exported file, and a function running it on a batch.

    Args:
        path: The `.onnx` file.
        threads: Intra-op threads; default ONNX Runtime's (the physical cores).

    Returns:
        `predict(images) -> numpy outputs`, taking a float32 (or uint8) numpy batch.

    Raises:
        MissingExtraError: onnxruntime is not installed (the `runtimes` extra).
    """
    ort = require("onnxruntime", "ONNX Runtime inference")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(images: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.asarray(images, np.float32)})[0]

    return predict
