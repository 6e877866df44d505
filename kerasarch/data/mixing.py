"""MixUp (Zhang et al., 2018) and CutMix (Yun et al., 2019) at batch level.

Each batch is mixed with itself in reverse order (the pairing timm's batch mode uses), with
one mixing weight `lam ~ Beta(alpha, alpha)` per batch. Labels must be one-hot; the result's
labels are `lam * y + (1 - lam) * y_partner`, where for CutMix `lam` is recomputed from the
pasted box's actual area (after clipping at the border), so the labels always match the
pixels. Randomness is stateless and comes from the `seed` argument.
"""

from __future__ import annotations

import tensorflow as tf


def _beta(alpha: float, seed: tf.Tensor) -> tf.Tensor:
    """One draw of Beta(alpha, alpha), as a ratio of two stateless Gamma draws."""
    g = tf.random.stateless_gamma([2], seed=seed, alpha=alpha)
    return g[0] / tf.maximum(g[0] + g[1], 1e-12)


def mixup(
    images: tf.Tensor, labels: tf.Tensor, alpha: float, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """MixUp: `lam * x + (1 - lam) * x_partner`, labels likewise.

    Args:
        images: `float32 [batch, h, w, c]`.
        labels: One-hot `float32 [batch, classes]`.
        alpha: Beta distribution parameter (> 0).
        seed: Shape `[2]` integer tensor.

    Returns:
        `(images, labels)`, mixed.
    """
    lam = _beta(alpha, seed)
    images = lam * images + (1.0 - lam) * tf.reverse(images, axis=[0])
    labels = lam * labels + (1.0 - lam) * tf.reverse(labels, axis=[0])
    return images, labels


def cutmix(
    images: tf.Tensor, labels: tf.Tensor, alpha: float, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix: paste a box of the partner image; labels weighted by the box's area.

    Args:
        images: `float32 [batch, h, w, c]`.
        labels: One-hot `float32 [batch, classes]`.
        alpha: Beta distribution parameter (> 0).
        seed: Shape `[2]` integer tensor.

    Returns:
        `(images, labels)`, mixed.
    """
    lam = _beta(alpha, seed)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    cut = tf.sqrt(1.0 - lam)
    centre = tf.random.stateless_uniform([2], seed=seed[::-1] + 7)
    cy, cx = centre[0] * h, centre[1] * w
    y1 = tf.cast(tf.clip_by_value(tf.round(cy - cut * h / 2), 0, h), tf.int32)
    y2 = tf.cast(tf.clip_by_value(tf.round(cy + cut * h / 2), 0, h), tf.int32)
    x1 = tf.cast(tf.clip_by_value(tf.round(cx - cut * w / 2), 0, w), tf.int32)
    x2 = tf.cast(tf.clip_by_value(tf.round(cx + cut * w / 2), 0, w), tf.int32)
    rows = tf.range(height)
    cols = tf.range(width)
    inside = (
        ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]
    )
    mask = tf.cast(inside, images.dtype)[None, :, :, None]
    images = images * (1.0 - mask) + tf.reverse(images, axis=[0]) * mask
    area = tf.cast((y2 - y1) * (x2 - x1), tf.float32) / (h * w)
    lam = 1.0 - area
    labels = lam * labels + (1.0 - lam) * tf.reverse(labels, axis=[0])
    return images, labels


def mix_batch(
    images: tf.Tensor,
    labels: tf.Tensor,
    seed: tf.Tensor,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """MixUp, CutMix, or (when both alphas are > 0) one of the two, each with p = 0.5.

    Args:
        images: `float32 [batch, h, w, c]`.
        labels: One-hot `float32 [batch, classes]`.
        seed: Shape `[2]` integer tensor.
        mixup_alpha: MixUp's alpha; 0 disables it.
        cutmix_alpha: CutMix's alpha; 0 disables it.

    Returns:
        `(images, labels)`.
    """
    seed = tf.cast(seed, tf.int32)
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = tf.random.stateless_uniform([], seed=seed + 3) < 0.5
        return tf.cond(
            use_cutmix,
            lambda: cutmix(images, labels, cutmix_alpha, seed),
            lambda: mixup(images, labels, mixup_alpha, seed),
        )
    if mixup_alpha > 0:
        return mixup(images, labels, mixup_alpha, seed)
    if cutmix_alpha > 0:
        return cutmix(images, labels, cutmix_alpha, seed)
    return images, labels
