"""Measuring architectures from their built graphs: FLOPs counted by TensorFlow's profiler.

Convention: one multiply-add is two floating-point operations (FLOPs = 2 x multiply-adds),
as TensorFlow's profiler counts convolutions and matrix products. The papers' and
torchvision's "FLOPs" tables usually print multiply-adds; divide by two to compare.

The count is taken from the graph TensorFlow actually runs for one forward pass in
inference mode, so it includes what the layer-by-layer formulas leave out (depthwise
convolutions, additions, normalization, the in-graph preprocessing), each elementwise
operation counted as one FLOP per output element.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras


def _input_spec(model: keras.Model, image_size: int | Sequence[int] | None, batch_size: int):
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise ValueError(f"flops() takes a single-input model; {model.name} has {len(model.inputs)}.")
    shape = list(model.inputs[0].shape)
    if image_size is not None:
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        shape[1:3] = [height, width]
    if any(d is None for d in shape[1:]):
        raise ValueError(
            f"{model.name} takes inputs of shape {tuple(model.inputs[0].shape)}: pass "
            "image_size=N to count FLOPs at an N x N input."
        )
    shape[0] = batch_size
    return tf.TensorSpec(shape, model.inputs[0].dtype)


def flops(
    model: keras.Model, image_size: int | Sequence[int] | None = None, batch_size: int = 1
) -> int:
    """FLOPs of one forward pass of `model` in inference mode, counted by TensorFlow's profiler.

    Args:
        model: A single-input Keras model (TensorFlow backend).
        image_size: Input height and width (an int for square inputs) where the model's
            input has `None` spatial dimensions, or to count at another size.
        batch_size: Images per forward pass; the count scales linearly with it.

    Returns:
        Floating-point operations, multiply-adds counted as two.

    Raises:
        ValueError: If the model has several inputs or an unknown spatial size and no
            `image_size` is given, or `batch_size` is not a positive integer.
    """
    import tensorflow as tf

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    spec = _input_spec(model, image_size, batch_size)
    forward = tf.function(lambda images: model(images, training=False))
    graph = forward.get_concrete_function(spec).graph
    options = (
        tf.compat.v1.profiler.ProfileOptionBuilder(
            tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        )
        .with_empty_output()
        .build()
    )
    report = tf.compat.v1.profiler.profile(graph=graph, run_meta=None, cmd="op", options=options)
    return int(report.total_float_ops)
