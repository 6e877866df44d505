"""`show_batch`: a labelled grid of the images a pipeline yields (the lessons' 5x5 figure)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure


def _label_text(label: np.ndarray, class_names: Sequence[str]) -> str:
    if label.ndim == 0:
        return str(class_names[int(label)])
    # one-hot / mixed labels: the two largest weights
    order = np.argsort(-label)[:2]
    parts = [f"{class_names[i]} {label[i]:.2f}" for i in order if label[i] > 1e-3]
    return "\n".join(parts)


def show_batch(
    dataset: tf.data.Dataset,
    class_names: Sequence[str],
    rows: int = 5,
    cols: int = 5,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Draws the first `rows * cols` images of a batched dataset with their labels.

    Args:
        dataset: Yields `(images, labels)` batches, pixels in `[0, 255]`; labels are
            integers or one-hot / mixed (MixUp, CutMix) vectors.
        class_names: Names, index = label.
        rows: Grid rows.
        cols: Grid columns.
        path: Where to save the figure as PNG (optional).

    Returns:
        The matplotlib `Figure` (no pyplot state is touched, so it works headless).
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, received {rows}x{cols}.")
    wanted = rows * cols
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.extend(np.asarray(batch_images))
        labels.extend(np.asarray(batch_labels))
        if len(images) >= wanted:
            break
    if not images:
        raise ValueError("The dataset yielded no images.")
    figure = Figure(figsize=(2.0 * cols, 2.2 * rows), layout="constrained")
    for i, axis in enumerate(figure.subplots(rows, cols, squeeze=False).flat):
        axis.axis("off")
        if i >= len(images):
            continue
        image = np.clip(images[i], 0, 255).astype(np.uint8)
        axis.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        axis.set_title(_label_text(labels[i], class_names), fontsize=8)
    if path is not None:
        figure.savefig(path, dpi=80)
    return figure
