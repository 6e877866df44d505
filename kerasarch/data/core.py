"""The one entry point of the input pipelines."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from kerasarch.data import digits

SOURCES = ("digits",)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a pipeline yields.

    Attributes:
        name: Dataset name as given to `load`.
        split: Split name.
        class_names: Readable class names, index = label.
        num_examples: Examples in the split (before batching).
        image_shape: `(height, width, channels)` of the images yielded.
    """

    name: str
    split: str
    class_names: tuple[str, ...]
    num_examples: int
    image_shape: tuple[int, int, int]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def load(
    name: str,
    split: str = "train",
    image_size: int | None = None,
    batch_size: int = 32,
    training: bool = False,
    seed: int = 0,
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Loads a dataset as a batched, prefetched pipeline of raw pixels and labels.

    Args:
        name: The source; `"digits"` (the 8x8 handwritten digits shipped with scikit-learn,
            offline) for now.
        split: `"train"`, `"validation"` or `"test"`.
        image_size: Output height and width; default the source's own (digits: 32).
        batch_size: Examples per batch.
        training: Shuffle (seeded) and repeat-free epoch order for training.
        seed: Seed of the shuffle and the split.

    Returns:
        `(dataset, info)`.

    Raises:
        ValueError: For an unknown source, split or a bad size.
    """
    if batch_size < 1:
        raise ValueError(f"Invalid value for argument `batch_size`: {batch_size!r}. Expected >= 1.")
    if name != "digits":
        raise ValueError(f"Invalid value for argument `name`: {name!r}. Expected one of {SOURCES}.")
    images, labels = digits.load_digits(split, image_size=image_size or 32, seed=seed)
    info = DatasetInfo(
        name=name,
        split=split,
        class_names=digits.CLASS_NAMES,
        num_examples=len(labels),
        image_shape=tuple(images.shape[1:]),
    )
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE), info
