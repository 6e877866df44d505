"""Export: a trained model as a TensorFlow SavedModel."""

from __future__ import annotations

import os

import keras


def saved_model(model: keras.Model, path: str | os.PathLike) -> str:
    """Writes `model` as a SavedModel whose `serve` endpoint takes the model's input.

    Uses `keras.Model.export`, which traces the inference graph (augmentation off) into a
    SavedModel that needs neither Python nor kerasarch to run.

    Args:
        model: The model.
        path: Output folder.

    Returns:
        The folder written.
    """
    path = os.fspath(path)
    model.export(path, format="tf_saved_model", verbose=False)
    return path
