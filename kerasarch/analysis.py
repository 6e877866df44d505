"""Measuring architectures from their built graphs: parameters, FLOPs, memory and depth.

Conventions, stated once:

- FLOPs: one multiply-add is two floating-point operations (FLOPs = 2 x multiply-adds), as
  TensorFlow's profiler counts convolutions and matrix products. The papers' and
  torchvision's "FLOPs" tables usually print multiply-adds; divide by two to compare. The
  count is taken from the graph TensorFlow runs for one forward pass in inference mode, so
  it includes what the layer-by-layer formulas leave out (depthwise convolutions, bias
  additions, residual additions, normalization, the in-graph preprocessing), each
  elementwise operation counted as one FLOP per output element. Operations the profiler
  has no FLOP formula for (pooling, activations such as ReLU) count zero.
- Weight memory: the bytes of every weight variable (trainable or not), by dtype.
- Peak activation memory: a liveness walk over the functional graph. The layers run in
  topological order; a tensor is allocated when its layer runs and freed after the last
  layer that reads it (model outputs live to the end). The peak is the largest sum of the
  live tensors' bytes while one layer runs (its inputs still live plus its outputs), at
  the given batch size. It leaves out the weights, the kernels' scratch buffers and
  in-place reuse, so it is what the graph itself must hold, not a process's RSS.
- Depth: weight layers (convolutions, depthwise/separable convolutions, dense layers) on
  the longest input-to-output path, the count the papers name their networks by
  (VGG-16: 16, ResNet-50: 50; a projection shortcut is on a shorter path). Weight layers
  on side branches (squeeze-and-excitation) lengthen the path they sit on.
  `Summary.weight_layers` counts every weight layer instead.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import keras

from kerasarch.registry import PublishedAccuracy

WEIGHT_LAYERS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose, keras.layers.Dense,
    keras.layers.EinsumDense,
)
OUTSIDE_LAYERS = "(outside the layers)"


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


def _at_size(model: keras.Model, image_size: int | Sequence[int] | None) -> keras.Model:
    """`model`, or its layers rebuilt on an `image_size` input where its own size differs.

    The rebuilt layers have fresh weights, which nothing measured here depends on.
    """
    if image_size is None or len(model.inputs) != 1:
        return model
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    fixed = tuple(model.inputs[0].shape[1:3])
    if None in fixed or fixed == size:
        return model
    inputs = keras.Input((*size, *model.inputs[0].shape[3:]), dtype=model.inputs[0].dtype)
    return keras.models.clone_model(model, input_tensors=inputs)


def _profile(model: keras.Model, image_size, batch_size: int, cmd: str):
    """TensorFlow's profiler report (`cmd` "op" or "scope") of one inference forward pass."""
    import tensorflow as tf

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    model = _at_size(model, image_size)
    spec = _input_spec(model, image_size, batch_size)
    forward = tf.function(lambda images: model(images, training=False))
    graph = forward.get_concrete_function(spec).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    logger = tf.get_logger()  # the profiler warns that its shape helper is deprecated
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return tf.compat.v1.profiler.profile(graph=graph, run_meta=None, cmd=cmd, options=options)
    finally:
        logger.setLevel(level)


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
    return int(_profile(model, image_size, batch_size, "op").total_float_ops)


def layer_flops(
    model: keras.Model, image_size: int | Sequence[int] | None = None, batch_size: int = 1
) -> dict[str, int]:
    """FLOPs of one forward pass per layer, from the profiler's view of the layers' name scopes.

    Keras runs each layer under a name scope of its own name (TensorFlow appends `_1`
    when the scope name was used before), so every graph operation is attributed to the
    outermost layer of `model` whose scope holds it; operations outside every layer
    (rare) are reported under `OUTSIDE_LAYERS`. The values sum to `flops(model, ...)`.

    Args:
        model: A single-input Keras model (TensorFlow backend).
        image_size: As for `flops`.
        batch_size: As for `flops`.

    Returns:
        `{layer name: FLOPs}` for the layers that cost any, in the model's layer order.

    Raises:
        ValueError: As `flops`.
    """
    report = _profile(model, image_size, batch_size, "scope")
    names = [layer.name for layer in model.layers]
    known = set(names)
    found: dict[str, int] = defaultdict(int)
    pending = list(report.children)
    while pending:
        node = pending.pop()
        pending.extend(node.children)
        if node.float_ops:
            found[_owner(node.name, known)] += int(node.float_ops)
    ordered = {name: found.pop(name) for name in names if name in found}
    return {**ordered, **found}


def _owner(op_name: str, layers: set[str]) -> str:
    """The layer whose name scope holds the graph operation `op_name`."""
    for part in op_name.split("/")[1:-1]:  # the first scope is the model's own
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in layers:
                return candidate
    return OUTSIDE_LAYERS


def _tensors(value: Any) -> list:
    return keras.tree.flatten(value)


def _nbytes(tensor, batch_size: int) -> int:
    size = batch_size
    for d in tensor.shape[1:]:
        if d is None:
            raise ValueError(
                f"Tensor {tensor.name} has shape {tuple(tensor.shape)}: build the model with a "
                "fixed input size (input_shape=(H, W, C)) to measure its memory."
            )
        size *= int(d)
    return size * _itemsize(tensor.dtype)


def _itemsize(dtype: Any) -> int:
    import numpy as np

    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize


def _graph(model: keras.Model) -> list[tuple[keras.layers.Layer, list, list]]:
    """(layer, input tensors, output tensors) of each layer, in topological order."""
    steps = []
    for layer in model.layers:
        try:
            inputs = [] if isinstance(layer, keras.layers.InputLayer) else _tensors(layer.input)
            outputs = _tensors(layer.output)
        except (AttributeError, ValueError) as error:
            raise ValueError(
                f"Layer {layer.name!r} of {model.name} is called more than once or not part of a "
                f"functional graph ({error}); memory and depth need a functional model whose "
                "layers are each called once."
            ) from None
        steps.append((layer, inputs, outputs))
    # A layer called twice shows only its first call's tensors: the second call's outputs
    # are then read (or returned) without being produced by any step.
    produced = {id(t) for _, _, outputs in steps for t in outputs}
    read = [t for _, inputs, _ in steps for t in inputs] + _tensors(model.outputs)
    if any(id(t) not in produced for t in read):
        raise ValueError(
            f"{model.name} calls a layer more than once (a shared layer) or holds tensors made "
            "outside its layers; memory and depth need a functional model whose layers are each "
            "called once."
        )
    return steps


def peak_activation_bytes(model: keras.Model, batch_size: int = 1) -> int:
    """Peak bytes of live activations in one forward pass (the module docstring's liveness walk).

    Args:
        model: A functional Keras model built with a fixed input size.
        batch_size: Images per forward pass.

    Returns:
        The largest sum of live tensors' bytes while one layer runs.

    Raises:
        ValueError: If a layer is shared (called several times), a tensor has an unknown
            dimension, or `batch_size` is not a positive integer.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    steps = _graph(model)
    last_use: dict[int, int] = {}
    for index, (_, inputs, _) in enumerate(steps):
        for tensor in inputs:
            last_use[id(tensor)] = index
    for tensor in _tensors(model.outputs):
        last_use[id(tensor)] = len(steps)
    live: dict[int, int] = {}
    peak = 0
    for index, (_, _, outputs) in enumerate(steps):
        for tensor in outputs:
            live[id(tensor)] = _nbytes(tensor, batch_size)
        peak = max(peak, sum(live.values()))
        live = {key: size for key, size in live.items() if last_use.get(key, index) > index}
    return peak


def depth(model: keras.Model) -> int:
    """Weight layers on the longest input-to-output path (see the module docstring).

    Args:
        model: A functional Keras model whose layers are each called once.

    Returns:
        The count; nested models count as one layer each.
    """
    reached: dict[int, int] = {}
    for layer, inputs, outputs in _graph(model):
        here = max((reached.get(id(t), 0) for t in inputs), default=0)
        here += isinstance(layer, WEIGHT_LAYERS)
        for tensor in outputs:
            reached[id(tensor)] = here
    return max(reached.get(id(t), 0) for t in _tensors(model.outputs))


def weight_bytes(model: keras.Model) -> dict[str, int]:
    """Bytes of the model's weights (trainable and not) by dtype, e.g. `{"float32": 4 * n}`."""
    found: dict[str, int] = defaultdict(int)
    for weight in model.weights:
        size = 1
        for d in weight.shape:
            size *= int(d)
        dtype = keras.backend.standardize_dtype(weight.dtype)
        found[dtype] += size * _itemsize(dtype)
    return dict(found)


@dataclasses.dataclass(frozen=True)
class Summary:
    """What `summary()` measures of one model (conventions in the module docstring).

    Attributes:
        name: The model's registry name, or its Keras name for a model passed in.
        input_shape: The input shape measured, `(height, width, channels)`.
        native_input: The registry's native input shape (None for an unregistered model).
        params_total: All weights (Keras `count_params()`).
        params_trainable: Trainable weights.
        params_non_trainable: Non-trainable weights (BatchNorm moving statistics).
        flops: FLOPs of one image's forward pass (multiply-adds x2).
        layer_flops: `(layer name, FLOPs)` for every layer that costs any, in layer order.
        weight_bytes: Weight memory by dtype.
        peak_activation_bytes: Peak live activations at batch 1.
        depth: Weight layers on the longest path.
        weight_layers: Weight layers in total.
        accuracy: Published ImageNet top-1 figures from the registry, each with its source.
    """

    name: str
    input_shape: tuple[int, ...]
    native_input: tuple[int, ...] | None
    params_total: int
    params_trainable: int
    params_non_trainable: int
    flops: int
    layer_flops: tuple[tuple[str, int], ...]
    weight_bytes: dict[str, int]
    peak_activation_bytes: int
    depth: int
    weight_layers: int
    accuracy: tuple[PublishedAccuracy, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-serializable data."""
        return dataclasses.asdict(self)


def _count(weights: list) -> int:
    total = 0
    for weight in weights:
        size = 1
        for d in weight.shape:
            size *= int(d)
        total += size
    return total


def summary(name_or_model: str | keras.Model, image_size: int | None = None) -> Summary:
    """Parameters, FLOPs, memory and depth of a registered model (or a built one).

    Args:
        name_or_model: A registry name (built with its default head at `image_size`) or a
            functional Keras model with one image input.
        image_size: Square input size to measure at; default the native input (a
            registered model) or the model's own input size.

    Returns:
        The `Summary`.

    Raises:
        ValueError: For an unknown name, an input size the model does not accept, or a
            model with an unknown input size and no `image_size`.
    """
    from kerasarch import registry

    info = None
    if isinstance(name_or_model, str):
        info = registry.model_info(name_or_model)
        if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
            raise ValueError(f"image_size must be a positive integer; got {image_size!r}.")
        kwargs = {} if image_size is None else {"input_shape": (image_size, image_size, info.input_shape[2])}
        model = registry.get_model(name_or_model, **kwargs)
        name = name_or_model
    else:
        model, name = name_or_model, name_or_model.name
        model = _at_size(model, image_size)  # memory and depth walk the built graph
    per_layer = layer_flops(model)
    trainable = _count(model.trainable_weights)
    total = _count(model.weights)
    return Summary(
        name=name,
        input_shape=tuple(int(d) for d in model.input_shape[1:]),
        native_input=info.input_shape if info else None,
        params_total=total,
        params_trainable=trainable,
        params_non_trainable=total - trainable,
        flops=sum(per_layer.values()),
        layer_flops=tuple(per_layer.items()),
        weight_bytes=weight_bytes(model),
        peak_activation_bytes=peak_activation_bytes(model),
        depth=depth(model),
        weight_layers=sum(isinstance(layer, WEIGHT_LAYERS) for layer in model.layers),
        accuracy=info.accuracy if info else (),
    )


def format_bytes(n: float) -> str:
    """`n` bytes in binary units (`"24.5 MiB"`, `"27.0 KiB"`)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"  # unreachable; keeps type checkers content


def format_summary(result: Summary, layers: int | None = 10) -> str:
    """`result` as the text `kerasarch summary` prints.

    Args:
        result: A `Summary`.
        layers: How many of the costliest layers to list (None: every layer that costs
            any FLOPs, in layer order).

    Returns:
        Plain text.
    """
    shape = "x".join(map(str, result.input_shape))
    native = "x".join(map(str, result.native_input)) if result.native_input else "-"
    memory = ", ".join(f"{format_bytes(b)} {dtype}" for dtype, b in result.weight_bytes.items()) or "0"
    lines = [
        f"{result.name} at {shape} (native input {native})",
        f"  parameters      {result.params_total:,} total, {result.params_trainable:,} trainable, "
        f"{result.params_non_trainable:,} non-trainable",
        f"  FLOPs           {result.flops:,} ({result.flops / 1e9:.3f} GFLOPs; multiply-adds x2, "
        "TensorFlow profiler, inference, one image)",
        f"  weight memory   {memory}",
        f"  peak activation {format_bytes(result.peak_activation_bytes)} at batch 1 (liveness walk over the "
        "graph's tensors)",
        f"  depth           {result.depth} weight layers on the longest path ({result.weight_layers} "
        "in total)",
    ]
    if result.accuracy:
        lines.append("  ImageNet top-1")
        for figure in result.accuracy:
            size = f" at {figure.image_size}" if figure.image_size else ""
            lines.append(f"    {figure.top1:.1f}%  {figure.weights} weights{size} ({figure.source})")
    elif result.native_input:
        lines.append("  ImageNet top-1  none published")
    rows = list(result.layer_flops)
    if layers is not None:
        rows = sorted(rows, key=lambda row: -row[1])[:layers]
        lines.append(f"  costliest layers ({len(rows)} of {len(result.layer_flops)}):")
    else:
        lines.append("  FLOPs per layer:")
    width = max((len(n) for n, _ in rows), default=0)
    lines += [f"    {n.ljust(width)}  {f:>16,}  {100 * f / max(result.flops, 1):5.1f}%" for n, f in rows]
    return "\n".join(lines)
