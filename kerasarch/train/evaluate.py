"""`kerasarch evaluate`: top-1/top-5, per-class accuracy and a confusion matrix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from kerasarch import data
from kerasarch.train.run_folder import atomic_write_bytes


def confusion_figure(matrix: np.ndarray, class_names) -> Figure:
    """A confusion-matrix heat map (rows: true class, columns: predicted)."""
    n = len(class_names)
    figure = Figure(figsize=(max(4, 0.5 * n + 2), max(4, 0.5 * n + 1.5)), layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis)
    if n <= 40:
        axis.set_xticks(range(n), class_names, rotation=90, fontsize=7)
        axis.set_yticks(range(n), class_names, fontsize=7)
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    axis.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                              color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    return figure


def evaluate(
    target: str | os.PathLike,
    dataset: str | None = None,
    split: str | None = None,
    image_size: int | None = None,
    batch_size: int = 64,
    data_dir: str | None = None,
    out: str | os.PathLike | None = None,
) -> dict:
    """Evaluates a run folder's best model (or a `.keras` file) on a dataset split.

    Writes `evaluation.json` and `confusion_matrix.png` into `out` (default: the run
    folder, or the current folder for a model file).

    Args:
        target: A run folder (its `best.keras`, dataset and image size are used) or a
            `.keras` model file.
        dataset: Dataset name; default the run's.
        split: Split; default the run's test split, else its validation split.
        image_size: Input size; default the model's input size.
        batch_size: Evaluation batch size.
        data_dir: tfds data dir.
        out: Output folder.

    Returns:
        The report: `top1`, `top5`, `per_class` accuracy, `confusion_matrix`, `num_examples`.

    Raises:
        ValueError: Missing model file, or no dataset for a bare model file.
    """
    from kerasarch.train.trainer import default_splits

    target = Path(target)
    config = {}
    if target.is_dir():
        model_path = target / "best.keras"
        if not model_path.exists():
            model_path = target / "last.keras"
        config = json.loads((target / "config.json").read_text())["config"]
        out = Path(out) if out else target
    else:
        model_path = target
        out = Path(out) if out else Path.cwd()
    if not model_path.exists():
        raise ValueError(f"No model to evaluate at {model_path}.")
    dataset = dataset or config.get("dataset")
    if not dataset:
        raise ValueError("Give --dataset to evaluate a model file.")
    if split is None:
        _, val_split, test_split = default_splits(dataset)
        split = config.get("test_split") or test_split or config.get("val_split") or val_split
    model = keras.saving.load_model(model_path)
    height, _, channels = model.input_shape[1:]
    size = image_size or height or config.get("image_size") or data.default_image_size(dataset)
    pipeline, info = data.load(dataset, split, image_size=size, batch_size=batch_size,
                               data_dir=data_dir or config.get("data_dir"))
    labels, top1_hits, top5_hits, predicted = [], [], [], []
    for images, y in pipeline:
        images = tf.cast(images, tf.float32)
        if images.shape[-1] == 1 and channels == 3:
            images = tf.image.grayscale_to_rgb(images)
        probs = np.asarray(model(images, training=False))
        y = np.asarray(y)
        order = np.argsort(-probs, axis=1)
        labels.append(y)
        predicted.append(order[:, 0])
        top5_hits.append((order[:, :5] == y[:, None]).any(axis=1))
        top1_hits.append(order[:, 0] == y)
    labels = np.concatenate(labels)
    predicted = np.concatenate(predicted)
    n = info.num_classes
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    per_class = {
        name: float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None
        for i, name in enumerate(info.class_names)
    }
    report = {
        "model": str(model_path),
        "dataset": dataset,
        "split": split,
        "num_examples": int(len(labels)),
        "top1": float(np.concatenate(top1_hits).mean()),
        "top5": float(np.concatenate(top5_hits).mean()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "evaluation.json", json.dumps(report, indent=1).encode())
    confusion_figure(matrix, info.class_names).savefig(out / "confusion_matrix.png", dpi=80)
    return report
