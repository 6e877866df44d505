"""Self-training's data: the labeled/unlabeled split, pseudo labels, class balancing, statistics.

- `split_labeled` draws N labeled images per class from a train split (seeded); the rest of
  the split is the unlabeled set (its labels are kept apart, only to measure the pseudo
  labels' accuracy, never to train).
- `pseudo_label` asks the teacher in inference mode (`model.predict`: no augmentation, no
  dropout, no stochastic depth), soft probabilities by default, and keeps the images whose
  confidence reaches a threshold.
- `balance` equalizes the classes the way Noisy Student does (Xie et al. 2020, sec. 3):
  classes with too many images keep their most confident ones, classes with too few
  duplicate theirs.
- `statistics` and `write_figure` record one iteration's pseudo labels in the run folder.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from kerasarch import heads
from kerasarch.train import run_folder

HISTOGRAM_BINS = 10


@dataclasses.dataclass(frozen=True)
class Split:
    """A train split cut into labeled and unlabeled images (uint8 pixels, int labels)."""

    labeled_images: np.ndarray
    labeled_labels: np.ndarray
    unlabeled_images: np.ndarray
    hidden_labels: np.ndarray  # the unlabeled images' true labels: for statistics only
    class_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PseudoLabels:
    """The teacher's labels for the unlabeled set.

    Attributes:
        probabilities: The teacher's softmax, `(unlabeled, classes)`, for every image.
        targets: The training targets of the images kept (soft rows sum to 1, or one-hot).
        kept: Indices into the unlabeled set of the images kept (after the threshold and
            balancing: an index repeats where balancing duplicated its image).
        counts_before: Images per class after the threshold, before balancing.
        counts_after: Images per class after balancing.
    """

    probabilities: np.ndarray
    targets: np.ndarray
    kept: np.ndarray
    counts_before: np.ndarray
    counts_after: np.ndarray


def split_labeled(images: np.ndarray, labels: np.ndarray, per_class: int, seed: int,
                  class_names: tuple[str, ...]) -> Split:
    """Draws `per_class` labeled images of every class; the others become the unlabeled set.

    Raises:
        ValueError: A class has no more than `per_class` images (nothing would be unlabeled
            for it), naming the class.
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(len(class_names)):
        members = np.flatnonzero(labels == label)
        if len(members) <= per_class:
            raise ValueError(
                f"Invalid value for `labels_per_class`: {per_class}. Class {class_names[label]!r} "
                f"has {len(members)} training images; expected fewer labeled than that."
            )
        chosen.append(rng.choice(members, per_class, replace=False))
    labeled = np.sort(np.concatenate(chosen))
    unlabeled = np.setdiff1d(np.arange(len(labels)), labeled)
    return Split(images[labeled], labels[labeled], images[unlabeled], labels[unlabeled],
                 tuple(class_names))


def teacher_probabilities(teacher: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The teacher's class probabilities in inference mode (its main output), as float32."""
    model = heads.main_output(teacher)
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(probabilities, dtype=np.float32)


def balance(predicted: np.ndarray, confidence: np.ndarray, classes: int,
            per_class: int | None = None) -> np.ndarray:
    """Indices that give every class with images the same count (Noisy Student's balancing).

    A class above the target keeps its `per_class` most confident images; a class below it
    repeats its images, most confident first, until it has `per_class`. A class without
    any image stays empty (there is nothing to duplicate).

    Args:
        predicted: The pseudo label (class index) of each candidate image.
        confidence: Its confidence (the teacher's probability of that class).
        classes: Number of classes.
        per_class: The target count; default the mean count over the classes with images.

    Returns:
        Indices into `predicted`, grouped by class.
    """
    counts = np.bincount(predicted, minlength=classes)
    present = counts[counts > 0]
    if per_class is None:
        per_class = max(1, round(float(present.mean()))) if len(present) else 0
    picked = []
    for label in range(classes):
        members = np.flatnonzero(predicted == label)
        if not len(members):
            continue
        ordered = members[np.argsort(-confidence[members], kind="stable")]
        picked.append(np.resize(ordered, per_class))  # cycles through the class when it grows
    return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)


def pseudo_label(probabilities: np.ndarray, hard: bool = False, threshold: float = 0.0,
                 balanced: bool = True, per_class: int | None = None) -> PseudoLabels:
    """Pseudo labels from the teacher's probabilities: threshold, then balancing.

    Args:
        probabilities: `teacher_probabilities` of the unlabeled images.
        hard: One-hot targets (the argmax) instead of the probabilities.
        threshold: Keep images whose top probability is at least this.
        balanced: Balance the classes (`balance`).
        per_class: Target count of `balance`.

    Returns:
        The `PseudoLabels`.

    Raises:
        ValueError: No image reaches `threshold`.
    """
    classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    candidates = np.flatnonzero(confidence >= threshold)
    if not len(candidates):
        raise ValueError(f"Invalid value for `threshold`: {threshold!r}. No unlabeled image reaches "
                         f"it (the teacher's highest confidence is {confidence.max():.3f}).")
    before = np.bincount(predicted[candidates], minlength=classes)
    if balanced:
        kept = candidates[balance(predicted[candidates], confidence[candidates], classes, per_class)]
    else:
        kept = candidates
    after = np.bincount(predicted[kept], minlength=classes)
    if hard:
        targets = np.eye(classes, dtype=np.float32)[predicted[kept]]
    else:  # renormalized in float64: the softmax's float32 rows sum to 1 within rounding only
        soft = probabilities[kept].astype(np.float64)
        targets = (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)
    return PseudoLabels(probabilities, targets, kept, before, after)


def save(labels: PseudoLabels, path: Path) -> None:
    """Writes the pseudo labels to an `.npz` file atomically (a resumed run reads them back)."""
    buffer = io.BytesIO()
    np.savez(buffer, **dataclasses.asdict(labels))
    run_folder.atomic_write_bytes(Path(path), buffer.getvalue())


def load(path: Path) -> PseudoLabels:
    """Reads pseudo labels written by `save`."""
    with np.load(path) as saved:
        return PseudoLabels(**{f.name: saved[f.name] for f in dataclasses.fields(PseudoLabels)})


def statistics(labels: PseudoLabels, hidden_labels: np.ndarray, class_names) -> dict:
    """One iteration's pseudo-label statistics, as JSON-ready values.

    `pseudo_label_accuracy` compares the teacher's argmax with the unlabeled images' true
    labels, which training never reads: how right the pseudo labels are.
    """
    confidence = labels.probabilities.max(axis=1)
    histogram, edges = np.histogram(confidence, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    predicted = labels.probabilities.argmax(axis=1)
    unique_kept = np.unique(labels.kept)
    return {
        "unlabeled_images": int(len(confidence)),
        "kept_images": int(len(unique_kept)),
        "training_images": int(len(labels.kept)),
        "mean_confidence": float(confidence.mean()),
        "confidence_histogram": {"edges": [round(float(e), 3) for e in edges],
                                 "counts": histogram.tolist()},
        "per_class_before_balancing": dict(zip(class_names, labels.counts_before.tolist(), strict=True)),
        "per_class_after_balancing": dict(zip(class_names, labels.counts_after.tolist(), strict=True)),
        "pseudo_label_accuracy": float((predicted == hidden_labels).mean()),
        "pseudo_label_accuracy_kept": float((predicted[unique_kept] == hidden_labels[unique_kept]).mean()),
    }


def write_figure(record: dict, path: Path) -> None:
    """One iteration as a figure: confidence histogram, class counts, teacher vs student top-1."""
    stats = record["pseudo_labels"]
    figure = Figure(figsize=(13, 3.6), layout="constrained")
    hist_axis, count_axis, acc_axis = figure.subplots(1, 3)
    edges, counts = stats["confidence_histogram"]["edges"], stats["confidence_histogram"]["counts"]
    hist_axis.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="black")
    hist_axis.set(title="teacher confidence (unlabeled set)", xlabel="top probability",
                  ylabel="images")
    names = list(stats["per_class_before_balancing"])
    x = np.arange(len(names))
    count_axis.bar(x - 0.2, list(stats["per_class_before_balancing"].values()), 0.4, label="before")
    count_axis.bar(x + 0.2, list(stats["per_class_after_balancing"].values()), 0.4, label="after")
    count_axis.set_xticks(x, names, rotation=90 if len(names) > 12 else 0)
    count_axis.set(title="pseudo labels per class (balancing)", ylabel="images")
    count_axis.legend()
    roles = [("teacher", record["teacher"].get("test_top1")),
             ("student", record["student"].get("test_top1"))]
    acc_axis.bar([r for r, _ in roles], [v or 0.0 for _, v in roles], color=["gray", "tab:green"])
    for index, (_, value) in enumerate(roles):
        if value is not None:
            acc_axis.text(index, value, f"{value:.2%}", ha="center", va="bottom")
    acc_axis.set(title=f"iteration {record['iteration']}: test top-1", ylim=(0, 1.05))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    run_folder.atomic_write_bytes(Path(path), buffer.getvalue())
