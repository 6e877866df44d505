"""MobileNet v1 (Howard et al., 2017) and v2 (Sandler et al., 2018): depthwise-separable networks.

v1's Table 1: a 3x3 stride-2 convolution, then thirteen depthwise-separable blocks (a 3x3
depthwise convolution and a 1x1 pointwise one, each followed by BatchNorm and ReLU6):

    pointwise filters  64 128 128 256 256 512 (512 x5) 1024 1024
    depthwise stride    1   2   1   2   1   2  (1  x5)    2    1

v2's Table 2: inverted residual blocks with linear bottlenecks (1x1 expansion by `t`,
3x3 depthwise, 1x1 linear projection to `c`; identity shortcut where shapes allow),
`n` blocks per row, the first of a row with stride `s`:

    t  1  6  6  6  6   6   6
    c 16 24 32 64 96 160 320
    n  1  2  3  4  3   3   1
    s  1  2  2  2  1   2   1

Both are graph- and weight-compatible with keras.applications' `MobileNet` and
`MobileNetV2` (same layer names, shapes and padding). MobileNet v3 is
`kerasarch.models.mobilenet_v3`.
"""

from __future__ import annotations

import dataclasses
import numbers

import keras

from kerasarch import blocks, heads, weights_timm
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file
from kerasarch.weights_timm import TimmNames, register_names

# keras.applications' BatchNorm settings, stated because frameworks disagree: v1 keeps
# Keras' defaults (epsilon 1e-3, momentum 0.99); v2 and v3 use momentum 0.999, as the
# TF-slim models they were converted from (torchvision: epsilon 1e-5, momentum 0.1 = 0.9).
V1_BN = {"epsilon": 1e-3, "momentum": 0.99}
V2_BN = {"epsilon": 1e-3, "momentum": 0.999}
# timm's and torchvision's MobileNetV2: PyTorch's BatchNorm (epsilon 1e-5, momentum 0.1 = Keras 0.9).
TORCH_BN = {"epsilon": 1e-5, "momentum": 0.9}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds a channel count to the nearest multiple of `divisor`, never 10% below `value`.

    The rule of the TF-slim MobileNet code, which keras.applications' MobileNetV2 and V3
    (`_make_divisible`, `_depth`) and torchvision copy: widths scaled by `alpha` stay
    multiples of 8, which the weights files and fast kernels expect.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def check_alpha(alpha) -> float:
    """`alpha` (the width multiplier) as a float, or a ValueError naming what is valid."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha <= 4:
        raise ValueError(
            f"Invalid value for argument `alpha`: {alpha!r}. Expected a number in (0, 4] "
            "(the width multiplier; the published weights use 0.25, 0.5, 0.75 or 1.0)."
        )
    return float(alpha)


def check_imagenet_alpha(weights, alpha: float, published: float, builder: str) -> None:
    """Refuses `weights="imagenet"` for a width with no declared official file."""
    if weights == "imagenet" and alpha != published:
        raise ValueError(
            f"Invalid value for argument `alpha`: {alpha!r} with weights='imagenet'. kerasarch "
            f"declares {builder}'s official file for alpha={published} only (no published hash "
            "for the other widths to verify a download against). Pass the path of the "
            "keras.applications file for this width as `weights` instead."
        )


def conv_classifier(spec: heads.ModelSpec, x, conv_name: str, reshape_name: str):
    """The logits as a 1x1 convolution on the pooled 1x1 map, as keras' MobileNet files hold them.

    The files store the classifier as a 4-D convolution kernel, so it stays a convolution
    (a `Dense` kernel would have another shape). It computes in float32, like
    `heads.predictions`, so the outputs stay float32 under mixed precision.
    """
    x = keras.layers.Conv2D(spec.classes, 1, dtype="float32", name=conv_name)(x)
    x = keras.layers.Reshape((spec.classes,), dtype="float32", name=reshape_name)(x)
    return keras.layers.Activation(
        spec.classifier_activation, dtype="float32", name="predictions"
    )(x)


def conv_bn(x, filters: int, kernel: int, strides: int, name: str, bn_name: str, bn: dict):
    """Convolution without bias, then BatchNorm; a strided 3x3 stem pads as TF "same"."""
    # The stems of keras' MobileNets use TF "same" at stride 2 (pad one pixel less before
    # than after on even sizes), the padding the weights were trained with.
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=name
    )(x)
    return keras.layers.BatchNormalization(name=bn_name, **bn)(x)


# --- MobileNet v1 ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SeparableStage:
    """Rows of v1's Table 1: `repeats` depthwise-separable blocks, the first with `stride`."""

    filters: int
    stride: int
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class MobileNetV1Config:
    """v1's body: the stem width and the depthwise-separable rows."""

    stem_filters: int = 32
    stages: tuple[SeparableStage, ...] = (
        SeparableStage(64, 1), SeparableStage(128, 2), SeparableStage(128, 1),
        SeparableStage(256, 2), SeparableStage(256, 1), SeparableStage(512, 2),
        SeparableStage(512, 1, repeats=5), SeparableStage(1024, 2), SeparableStage(1024, 1),
    )


def separable_block(x, filters: int, stride: int, depth_multiplier: int, block: int):
    """3x3 depthwise conv, BN, ReLU6, then 1x1 pointwise conv, BN, ReLU6 (keras' names)."""
    name = f"conv_dw_{block}"
    x, padding = blocks.pad_for_conv(x, 3, stride, "keras", name)
    x = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding=padding, depth_multiplier=depth_multiplier, use_bias=False,
        name=name,
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn", **V1_BN)(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    name = f"conv_pw_{block}"
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn", **V1_BN)(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _v1(alpha, depth_multiplier, dropout, kwargs: dict) -> keras.Model:
    alpha = check_alpha(alpha)
    if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise ValueError(
            f"Invalid value for argument `depth_multiplier`: {depth_multiplier!r}. Expected an "
            "integer >= 1 (depthwise output channels per input channel)."
        )
    if kwargs.get("weights") == "imagenet" and depth_multiplier != 1:
        raise ValueError(
            f"Invalid value for argument `depth_multiplier`: {depth_multiplier!r} with "
            "weights='imagenet'. The published weights have depth_multiplier=1."
        )
    check_imagenet_alpha(kwargs.get("weights"), alpha, 1.0, "mobilenet")
    if not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"Invalid value for argument `dropout`: {dropout!r}. Expected a rate in [0, 1).")
    variant = "mobilenet_025" if alpha == 0.25 else "mobilenet"
    config = CONFIGS[variant]
    spec = heads.resolve(variant, kwargs)
    inputs, x = heads.image_input(spec)
    x = conv_bn(x, int(config.stem_filters * alpha), 3, 2, "conv1", "conv1_bn", V1_BN)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    block = 0
    for stage in config.stages:
        for i in range(stage.repeats):
            block += 1
            stride = stage.stride if i == 0 else 1
            x = separable_block(x, int(stage.filters * alpha), stride, depth_multiplier, block)
    if not spec.include_top:
        return heads.finish(spec, inputs, heads.features(spec, x))
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return heads.finish(spec, inputs, conv_classifier(spec, x, "conv_preds", "reshape_2"))


# --- MobileNet v2 ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InvertedResidualStage:
    """A row of v2's Table 2: expansion `t`, output channels `c`, `n` blocks, first stride `s`."""

    expansion: int
    filters: int
    repeats: int
    stride: int


@dataclasses.dataclass(frozen=True)
class MobileNetV2Config:
    """v2's body: stem width, the inverted residual rows and the last 1x1 convolution."""

    stem_filters: int = 32
    stages: tuple[InvertedResidualStage, ...] = (
        InvertedResidualStage(1, 16, 1, 1), InvertedResidualStage(6, 24, 2, 2),
        InvertedResidualStage(6, 32, 3, 2), InvertedResidualStage(6, 64, 4, 2),
        InvertedResidualStage(6, 96, 3, 1), InvertedResidualStage(6, 160, 3, 2),
        InvertedResidualStage(6, 320, 1, 1),
    )
    last_filters: int = 1280


def inverted_residual_block(x, expansion: int, filters: int, stride: int, block: int, padding: str = "keras"):
    """Expand (1x1, ReLU6), 3x3 depthwise (ReLU6), linear 1x1 projection, identity shortcut.

    The first block has no expansion (t = 1) and keras names it `expanded_conv_`; the
    others are `block_{i}_`. The projection has no activation: the "linear bottleneck".
    `padding` is the weights' source (`blocks.pad_for_conv`); "torch" also means PyTorch's
    BatchNorm epsilon.
    """
    inputs, in_channels = x, x.shape[-1]
    prefix = f"block_{block}_" if block else "expanded_conv_"
    bn = TORCH_BN if padding == "torch" else V2_BN
    if block:
        x = keras.layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{prefix}expand")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}expand_BN", **bn)(x)
        x = keras.layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    x, conv_padding = blocks.pad_for_conv(x, 3, stride, padding, f"{prefix}depthwise")
    x = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding=conv_padding, use_bias=False, name=f"{prefix}depthwise"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}depthwise_BN", **bn)(x)
    x = keras.layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project")(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}project_BN", **bn)(x)
    if stride == 1 and in_channels == filters:
        x = keras.layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _v2(alpha, kwargs: dict, layout: str = "keras") -> keras.Model:
    alpha = check_alpha(alpha)
    check_imagenet_alpha(kwargs.get("weights"), alpha, 1.0, "mobilenet_v2")
    weights_timm.check_layout(layout, kwargs.get("weights"), "symmetric padding, BatchNorm epsilon 1e-5")
    padding = layout  # `blocks.pad_for_conv`'s name of the same choice
    config = CONFIGS["mobilenet_v2"]
    spec = heads.resolve("mobilenet_v2", kwargs)
    inputs, x = heads.image_input(spec)
    stem = make_divisible(config.stem_filters * alpha)
    if padding == "torch":
        x, conv_padding = blocks.pad_for_conv(x, 3, 2, padding, "Conv1")
        x = keras.layers.Conv2D(stem, 3, strides=2, padding=conv_padding, use_bias=False, name="Conv1")(x)
        x = keras.layers.BatchNormalization(name="bn_Conv1", **TORCH_BN)(x)
    else:
        x = conv_bn(x, stem, 3, 2, "Conv1", "bn_Conv1", V2_BN)
    x = keras.layers.ReLU(6.0, name="Conv1_relu")(x)
    block = 0
    for stage in config.stages:
        for i in range(stage.repeats):
            stride = stage.stride if i == 0 else 1
            filters = make_divisible(int(stage.filters * alpha))
            x = inverted_residual_block(x, stage.expansion, filters, stride, block, padding)
            block += 1
    # keras widens the last convolution only for alpha > 1 (the paper: "except for the last").
    last = make_divisible(config.last_filters * alpha) if alpha > 1.0 else config.last_filters
    x = keras.layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = keras.layers.BatchNormalization(name="Conv_1_bn", **(TORCH_BN if padding == "torch" else V2_BN))(x)
    x = keras.layers.ReLU(6.0, name="out_relu")(x)
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))


CONFIGS = {
    "mobilenet": MobileNetV1Config(),
    "mobilenet_025": MobileNetV1Config(),
    "mobilenet_v2": MobileNetV2Config(),
}

_KA = "keras.applications 3.15"
# The MD5 digests of the two 1.0/224 files, as published alongside their URLs by a
# project that verifies keras.applications downloads (keras' own code checks none for
# MobileNet v1/v2); the other alpha/size files have no published digest to check.
_V1_FILES = ImageNetWeights(
    keras_applications_file("mobilenet/mobilenet_1_0_224_tf.h5", "03394917f9a9ea3362f46332a5b6a215"),
    keras_applications_file(
        "mobilenet/mobilenet_1_0_224_tf_no_top.h5", "725ccbd03d61d7ced5b5c4cd17e7d527"
    ),
)
_V2_STEM = "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224"
_V2_FILES = ImageNetWeights(
    keras_applications_file(f"{_V2_STEM}.h5", "321911b381f6fd09b744356f6796ee18"),
    keras_applications_file(f"{_V2_STEM}_no_top.h5", "f1a68526548f7541cda07e19ba6c85f4"),
)

V1_RECIPE = Recipe(
    "rmsprop", 0.045, 32, schedule="step", step_epochs=2, step_factor=1 / 0.94,
    source="Howard et al. 2017, sec. 4: RMSprop with asynchronous gradient descent as "
    "Inception v3, little or no weight decay; the rate and schedule are Inception v3's "
    "(lr 0.045 at batch 32 per replica, x0.94 every 2 epochs)",
)
V2_RECIPE = Recipe(
    "rmsprop", 0.045, 96, schedule="step", step_epochs=1, step_factor=1 / 0.98,
    weight_decay=4e-5,
    source="Sandler et al. 2018, sec. 6.1: RMSprop (decay and momentum 0.9), lr 0.045 "
    "x0.98 per epoch, batch 96 per worker (16 workers), L2 weight decay 4e-5",
)

_V1 = dict(
    paper="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications "
    "(Howard et al.)",
    year=2017, input_shape=(224, 224, 3), preprocessing="tf", min_size=32, recipe=V1_RECIPE,
)

_V1_ARGS = """\
alpha (float): Width multiplier: every layer's filters times `alpha` (0.25, 0.5, 0.75,
    1.0 have published weights). `alpha=0.25` builds the `mobilenet_025` variant.
depth_multiplier (int): Depthwise output channels per input channel (the paper's
    resolution multiplier is the input size instead).
dropout (float): Dropout rate before the classifier (keras.applications' 1e-3)."""


@register(
    name="mobilenet_025", preset={"alpha": 0.25}, **_V1,
    params=ParamCounts(475_544, 470_072, f"{_KA} MobileNet(alpha=0.25)"),
)
@register(
    **_V1, imagenet=_V1_FILES, twin="mobilenet.MobileNet",
    params=ParamCounts(4_253_864, 4_231_976, f"{_KA} MobileNet"),
    accuracy=(PublishedAccuracy(75.39, "timm mobilenetv1_100.ra4_e3600_r224_in1k",
                                "timm results-imagenet.csv (timm layout)", 224),),
)
@heads.contract_docstring(_V1_ARGS)
def mobilenet(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, augmentation=None,
              name=None, alpha=1.0, depth_multiplier=1, dropout=1e-3) -> keras.Model:
    """MobileNet v1 (Howard et al., 2017): thirteen depthwise-separable blocks, ReLU6.

    Graph- and weight-compatible with `keras.applications.MobileNet`: `weights="imagenet"`
    loads its alpha 1.0 file (trained at 224; it also loads at the other sizes, as keras
    does). Departures from the paper, as keras: ReLU6 rather than ReLU; the last block has
    stride 1 (Table 1 prints "s2" for it, a typo: the output stays 7x7); the classifier is a
    1x1 convolution (`conv_preds`) after dropout. Strided depthwise convolutions pad as TF
    "same" (`blocks.keras_pad`). Inputs scaled to [-1, 1]; any size >= 32.
    """
    args = heads.contract_args(locals())
    return _v1(alpha, depth_multiplier, dropout, args)


_V2_ARGS = """\
alpha (float): Width multiplier; channels rounded to multiples of 8 (`make_divisible`).
    The last 1x1 convolution keeps 1280 channels for alpha <= 1, as in the paper.
layout (str): The weights' source: `"keras"` (TF-"same" at stride 2 and BatchNorm epsilon
    1e-3, keras.applications' file) or `"torch"` (symmetric padding and epsilon 1e-5, timm's
    and torchvision's layout, which `weights="hf://timm/mobilenetv2_100.<tag>"` needs)."""

# timm's names (`mobilenetv2_100`), for layout="torch": the stem, head and classifier ...
TIMM_FIXED = {"Conv1": "conv_stem", "bn_Conv1": "bn1", "Conv_1": "conv_head", "Conv_1_bn": "bn2",
              "predictions": "classifier"}
# ... the first block (timm's DepthwiseSeparableConv `blocks.0.0`, no expansion) ...
TIMM_FIRST = {"depthwise": "conv_dw", "depthwise_BN": "bn1", "project": "conv_pw", "project_BN": "bn2"}
# ... and `block_{n}_...`, timm's `blocks.{stage}.{index}` counted through Table 2's rows.
TIMM_BLOCK = {"expand": "conv_pw", "expand_BN": "bn1", "depthwise": "conv_dw", "depthwise_BN": "bn2",
              "project": "conv_pwl", "project_BN": "bn3"}
TIMM_POSITIONS = [(row, index) for row, stage in enumerate(MobileNetV2Config().stages)
                  for index in range(stage.repeats)]


def timm_module(layer: str) -> str | None:
    """The timm module of a `mobilenet_v2` layer (`TIMM_FIXED`, `TIMM_FIRST`, `TIMM_BLOCK`)."""
    if layer.startswith("expanded_conv_"):
        part = TIMM_FIRST.get(layer.removeprefix("expanded_conv_"))
        return None if part is None else f"blocks.0.0.{part}"
    number, _, part = layer.removeprefix("block_").partition("_")
    if layer.startswith("block_") and number.isdigit() and part in TIMM_BLOCK:
        row, index = TIMM_POSITIONS[int(number)]
        return f"blocks.{row}.{index}.{TIMM_BLOCK[part]}"
    return TIMM_FIXED.get(layer)


register_names(TimmNames(timm_module, head="classifier", architectures={"mobilenet_v2": "mobilenetv2_100"}))


@register(
    paper="MobileNetV2: Inverted Residuals and Linear Bottlenecks (Sandler et al.)", year=2018,
    input_shape=(224, 224, 3), preprocessing="tf", min_size=32, recipe=V2_RECIPE,
    imagenet=_V2_FILES, twin="mobilenet_v2.MobileNetV2",
    params=ParamCounts(3_538_984, 3_504_872, f"{_KA} MobileNetV2"),
    accuracy=(
        PublishedAccuracy(71.9, "torchvision", "torchvision meta (torchvision layout)", 224),
        PublishedAccuracy(72.91, "timm mobilenetv2_100.ra_in1k", "timm results-imagenet.csv", 224),
    ),
)
@heads.contract_docstring(_V2_ARGS)
def mobilenet_v2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                 name=None, alpha=1.0, layout="keras") -> keras.Model:
    """MobileNet v2 (Sandler et al., 2018): inverted residuals with linear bottlenecks.

    Graph- and weight-compatible with `keras.applications.MobileNetV2`; `weights="imagenet"`
    loads its alpha 1.0 file. As keras (and the paper's code), the head has no dropout and
    strided depthwise convolutions pad as TF "same" (`blocks.keras_pad`); `layout="torch"`
    builds timm's layout for its weights. Inputs scaled to [-1, 1] (timm's weights: ImageNet
    mean/std); any size >= 32.
    """
    args = heads.contract_args(locals())
    return _v2(alpha, args, layout)
