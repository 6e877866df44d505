"""`kerasarch evaluate`: top-1/top-5, per-class accuracy and a confusion matrix.

The figure stays bounded at any class count: up to `ANNOTATED_CLASSES` classes it is
scikit-learn's annotated `ConfusionMatrixDisplay`; above, an unannotated heat map of at
most `MAX_INCHES` square, with the most-confused pairs listed in `evaluation.json` and on
screen instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from kerasarch import data, heads
from kerasarch.train.run_folder import atomic_write_bytes

ANNOTATED_CLASSES = 30  # larger matrices are drawn without numbers or class names
SCREEN_CLASSES = 20  # per-class accuracy is printed up to this many classes
MAX_INCHES = 10.0
DPI = 80
MOST_CONFUSED = 10


def confusion_figure(matrix: np.ndarray, class_names) -> Figure:
    """A confusion-matrix figure (rows: true class, columns: predicted), of bounded size.

    Args:
        matrix: `[n, n]` counts.
        class_names: The `n` class names.

    Returns:
        At most `ANNOTATED_CLASSES` classes: the annotated counts with class names. Above:
        a heat map of each row's fractions (so classes of any size compare), no labels,
        at most `MAX_INCHES` inches square.
    """
    n = len(class_names)
    if n <= ANNOTATED_CLASSES:
        side = min(MAX_INCHES, max(4.0, 0.3 * n + 2.5))
        figure = Figure(figsize=(side, side), layout="constrained")
        axis = figure.subplots()
        display = ConfusionMatrixDisplay(matrix, display_labels=list(class_names)).plot(
            ax=axis, cmap="Blues", xticks_rotation="vertical", values_format="d", colorbar=False,
            text_kw={"fontsize": 7 if n > 10 else 9},
        )
        figure.colorbar(display.im_, ax=axis, shrink=0.8)
        return figure
    figure = Figure(figsize=(MAX_INCHES, MAX_INCHES * 0.9), layout="constrained")
    axis = figure.subplots()
    totals = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    image = axis.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="antialiased")
    figure.colorbar(image, ax=axis, label="share of the true class", shrink=0.8)
    axis.set_title(f"Confusion matrix, {n} classes (most-confused pairs: evaluation.json)")
    axis.set_xlabel("predicted class index")
    axis.set_ylabel("true class index")
    return figure


def most_confused(matrix: np.ndarray, class_names, count: int = MOST_CONFUSED) -> list[dict]:
    """The largest off-diagonal cells: which true class is most often taken for which.

    Args:
        matrix: `[n, n]` counts (rows: true class).
        class_names: The `n` class names.
        count: How many pairs.

    Returns:
        Up to `count` dicts `{"true", "predicted", "count", "share"}`, largest first
        (`share`: the count over the true class's examples); pairs with count 0 are left out.
    """
    off = np.array(matrix, dtype=np.int64)
    np.fill_diagonal(off, 0)
    flat = off.ravel()
    count = min(count, int((flat > 0).sum()))
    if not count:
        return []
    top = np.argpartition(-flat, count - 1)[:count]
    top = top[np.lexsort((top, -flat[top]))]
    totals = matrix.sum(axis=1)
    pairs = []
    for index in top:
        true, predicted = divmod(int(index), off.shape[1])
        pairs.append({"true": class_names[true], "predicted": class_names[predicted],
                      "count": int(flat[index]), "share": float(flat[index] / totals[true])})
    return pairs


def summary(report: dict) -> str:
    """The evaluation report as the lines `kerasarch evaluate` prints."""
    lines = [f"{report['model']} on {report['dataset']} [{report['split']}]: "
             f"{report['num_examples']} images, {len(report['per_class'])} classes",
             f"top-1 accuracy  {report['top1']:.2%}"]
    if report.get("top5") is not None:
        lines.append(f"top-5 accuracy  {report['top5']:.2%}")
    if len(report["per_class"]) <= SCREEN_CLASSES:
        lines.append("per-class accuracy:")
        width = max(len(str(name)) for name in report["per_class"])
        for name, accuracy in report["per_class"].items():
            shown = "no examples" if accuracy is None else f"{accuracy:.2%}"
            lines.append(f"  {str(name).ljust(width)}  {shown}")
    if report.get("most_confused"):
        lines.append("most confused (true -> predicted: count, share of the true class):")
        lines += [f"  {p['true']} -> {p['predicted']}: {p['count']} ({p['share']:.0%})"
                  for p in report["most_confused"]]
    lines += [f"wrote {path}" for path in report.get("outputs", {}).values()]
    return "\n".join(lines)


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
        The report: `top1`, `top5` (None under 6 classes), `per_class` accuracy,
        `most_confused` pairs, `confusion_matrix`, `num_examples`, and `outputs` (the
        paths of `evaluation.json` and the figure).

    Raises:
        ValueError: Missing model file, or no dataset for a bare model file.
    """
    from kerasarch.train.metrics import top_k_hits

    target = Path(target)
    config, resolved = {}, {}
    if target.is_dir():
        model_path = target / "best.keras"
        if not model_path.exists():
            model_path = target / "last.keras"
        record = json.loads((target / "config.json").read_text())
        config, resolved = record["config"], record.get("resolved", {})
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
        defaults = data.source_defaults(dataset)
        split = (resolved.get("test_split") or config.get("test_split") or defaults.test_split
                 or resolved.get("val_split") or config.get("val_split") or defaults.val_split)
    model = heads.main_output(keras.saving.load_model(model_path, compile=False))  # inference only
    height, _, channels = model.input_shape[1:]
    size = (image_size or resolved.get("image_size") or height or config.get("image_size")
            or data.default_image_size(dataset))
    # the pipeline converts to the model's channel count (RGB photos into LeNet-5, digits
    # into an RGB net), as the trainer's does
    pipeline, info = data.load(dataset, split, image_size=size, batch_size=batch_size,
                               data_dir=data_dir or config.get("data_dir"), channels=channels)
    labels, top1_hits, top5_hits, predicted = [], [], [], []
    for images, y in pipeline:
        probs = model(tf.cast(images, tf.float32), training=False)
        labels.append(np.asarray(y))
        predicted.append(np.argmax(np.asarray(probs), axis=1))
        top1_hits.append(np.asarray(top_k_hits(y, probs, 1)))
        top5_hits.append(np.asarray(top_k_hits(y, probs, 5)))
    labels = np.concatenate(labels)
    predicted = np.concatenate(predicted)
    n = info.num_classes
    matrix = confusion_matrix(labels, predicted, labels=np.arange(n))
    per_class = {
        name: float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None
        for i, name in enumerate(info.class_names)
    }
    out.mkdir(parents=True, exist_ok=True)
    outputs = {"report": str(out / "evaluation.json"), "figure": str(out / "confusion_matrix.png")}
    report = {
        "model": str(model_path),
        "dataset": dataset,
        "split": split,
        "num_examples": int(len(labels)),
        "top1": float(np.concatenate(top1_hits).mean()),
        # top-5 of fewer than 6 classes is (nearly) always 100%: not reported
        "top5": float(np.concatenate(top5_hits).mean()) if n >= 6 else None,
        "per_class": per_class,
        "most_confused": most_confused(matrix, info.class_names),
        "confusion_matrix": matrix.tolist(),
        "outputs": outputs,
    }
    atomic_write_bytes(out / "evaluation.json", json.dumps(report, indent=1).encode())
    confusion_figure(matrix, info.class_names).savefig(outputs["figure"], dpi=DPI)
    return report
