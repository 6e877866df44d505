"""The embedded `digits` set: 1,797 handwritten 8x8 digits that ship with scikit-learn.

It needs no download, so it is the offline default of `kerasarch train`. The 8x8 images
(values 0-16) are scaled to [0, 255] and upsampled to a 28x28 digit centered in a 32x32
field, as LeNet-5's paper frames MNIST digits (section III.A): strokes stay away from the
border, where C5's receptive fields see them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

CLASS_NAMES = tuple(str(d) for d in range(10))
SPLITS = ("train", "validation", "test")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


def _split_indices(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    train, validation = train_test_split(
        rest, test_size=VALIDATION_FRACTION, stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


def load_digits(
    split: str = "train", image_size: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Returns one split of the digits as uint8 images `(n, size, size, 1)` and int labels.

    The split is stratified and fixed by `seed`: 20% test, then 10% of the rest validation.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        image_size: Output height and width (>= 8); the digit fills 7/8 of it.
        seed: Seed of the split.

    Returns:
        `(images, labels)`.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if split not in SPLITS:
        raise ValueError(f"Invalid value for argument `split`: {split!r}. Expected one of {SPLITS}.")
    if image_size < 8:
        raise ValueError(f"Invalid value for argument `image_size`: {image_size!r}. Expected >= 8.")
    bunch = sklearn_digits()
    labels = bunch.target.astype(np.int32)
    chosen = _split_indices(labels, seed)[split]
    pixels = bunch.images[chosen, :, :, None].astype(np.float32) * (255.0 / 16.0)
    inner = round(image_size * 28 / 32)
    resized = tf.image.resize(pixels, (inner, inner), method="bilinear").numpy()
    before = (image_size - inner) // 2
    after = image_size - inner - before
    padded = np.pad(resized, ((0, 0), (before, after), (before, after), (0, 0)))
    images = np.clip(np.round(padded), 0, 255).astype(np.uint8)
    return images, labels[chosen]
