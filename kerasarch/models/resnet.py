"""ResNet (He et al. 2015), pre-activation ResNet v2 (He et al. 2016) and Wide ResNet.

The paper's Table 1: four stages of residual blocks after a 7x7 stem, widths 64, 128,
256, 512 (bottleneck blocks expand the output 4x).

    resnet18          basic       2  2  2  2
    resnet34          basic       3  4  6  3
    resnet50          bottleneck  3  4  6  3
    resnet101         bottleneck  3  4 23  3
    resnet152         bottleneck  3  8 36  3
    wide_resnet50_2   bottleneck  3  4  6  3   (inner width x2)
    wide_resnet101_2  bottleneck  3  4 23  3   (inner width x2)
    resnet50v2 / 101v2 / 152v2: pre-activation bottleneck blocks, same depths as v1

Two layouts exist in the reference libraries and both are kept, so weights port 1:1:
`KERAS` (keras.applications and the original caffe models: convolutions with biases,
stride on the first 1x1 convolution of a bottleneck) and `TORCHVISION` (no biases, stride
on the 3x3 convolution, "ResNet v1.5").
"""

from __future__ import annotations

import dataclasses

import keras
from typing_extensions import Unpack

from kerasarch import heads
from kerasarch import layers as ka_layers
from kerasarch.registry import ParamCounts, register


@dataclasses.dataclass(frozen=True)
class Layout:
    """Conventions that differ between the reference implementations."""

    conv_bias: bool
    norm_epsilon: float
    bn_momentum: float
    stride_on_3x3: bool
    norm: str = "batch"  # "batch", or "group" (BiT)
    groups: int = 32  # GroupNorm groups (BiT)
    weight_standardization: bool = False  # BiT


# keras.applications: BatchNorm epsilon 1.001e-5 (the caffe models' 1e-5, nudged above
# cuDNN's minimum), Keras' momentum 0.99, biases on every convolution.
KERAS = Layout(conv_bias=True, norm_epsilon=1.001e-5, bn_momentum=0.99, stride_on_3x3=False)
# torchvision: epsilon 1e-5, momentum 0.1 in PyTorch's convention (0.9 in Keras'), no biases.
TORCHVISION = Layout(conv_bias=False, norm_epsilon=1e-5, bn_momentum=0.9, stride_on_3x3=True)
# BiT: GroupNorm(32) with PyTorch's and BiT's epsilon 1e-5 (Keras' GroupNormalization
# defaults to 1e-3, which would shift every activation of the published weights), weight-
# standardized convolutions without biases (StandardizedConv2D states its epsilon).
BIT = Layout(
    conv_bias=False, norm_epsilon=1e-5, bn_momentum=0.0, stride_on_3x3=True,
    norm="group", weight_standardization=True,
)


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """One row of the stage table."""

    block: str  # "basic", "bottleneck", "preact" (v2 bottleneck) or "bit"
    blocks_per_stage: tuple[int, int, int, int]
    layout: Layout
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    inner_width_factor: int = 1  # Wide ResNet widens the 3x3 convolution of a bottleneck
    width_multiplier: int = 1  # BiT widens every convolution, the stem included


def _bit(depths: tuple[int, int, int, int], width: int) -> ResNetConfig:
    return ResNetConfig("bit", depths, BIT, width_multiplier=width)


CONFIGS = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2), TORCHVISION),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3), TORCHVISION),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3), KERAS),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3), KERAS),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3), KERAS),
    "wide_resnet50_2": ResNetConfig("bottleneck", (3, 4, 6, 3), TORCHVISION, inner_width_factor=2),
    "wide_resnet101_2": ResNetConfig("bottleneck", (3, 4, 23, 3), TORCHVISION, inner_width_factor=2),
    "resnet50v2": ResNetConfig("preact", (3, 4, 6, 3), KERAS),
    "resnet101v2": ResNetConfig("preact", (3, 4, 23, 3), KERAS),
    "resnet152v2": ResNetConfig("preact", (3, 8, 36, 3), KERAS),
    "bit_r50x1": _bit((3, 4, 6, 3), 1),
    "bit_r50x3": _bit((3, 4, 6, 3), 3),
    "bit_r101x1": _bit((3, 4, 23, 3), 1),
    "bit_r101x3": _bit((3, 4, 23, 3), 3),
    "bit_r152x2": _bit((3, 8, 36, 3), 2),
    "bit_r152x4": _bit((3, 8, 36, 3), 4),
}


def _bn(x, name: str, layout: Layout):
    """The layout's normalization: BatchNorm, or GroupNorm for BiT."""
    if layout.norm == "group":
        return keras.layers.GroupNormalization(
            groups=layout.groups, epsilon=layout.norm_epsilon, name=name
        )(x)
    return keras.layers.BatchNormalization(
        epsilon=layout.norm_epsilon, momentum=layout.bn_momentum, name=name
    )(x)


def _conv(x, filters: int, kernel: int, name: str, layout: Layout, strides: int = 1, bias=None):
    if kernel == 3 and strides > 1:
        # Symmetric padding as in the references; Keras "same" pads only bottom/right at
        # stride 2 on even sizes, which shifts the sampling grid.
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    conv = ka_layers.StandardizedConv2D if layout.weight_standardization else keras.layers.Conv2D
    return conv(
        filters, kernel, strides=strides, padding=padding,
        use_bias=layout.conv_bias if bias is None else bias, name=name,
    )(x)


def _residual(shortcut, branch, name: str, drop_rate: float, out_name: str):
    """`shortcut + branch`, the branch dropped per sample in training when drop_rate > 0."""
    if drop_rate > 0:
        branch = ka_layers.StochasticDepth(drop_rate, name=f"{name}_drop_path")(branch)
    return keras.layers.Add(name=out_name)([shortcut, branch])


def basic_block(
    x, filters: int, stride: int, project: bool, name: str, layout: Layout, drop_rate: float = 0.0
):
    """Two 3x3 convolutions and an identity (or projected) shortcut (ResNet-18/34)."""
    shortcut = x
    if project:
        shortcut = _conv(x, filters, 1, f"{name}_0_conv", layout, strides=stride)
        shortcut = _bn(shortcut, f"{name}_0_bn", layout)
    x = _conv(x, filters, 3, f"{name}_1_conv", layout, strides=stride)
    x = _bn(x, f"{name}_1_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, filters, 3, f"{name}_2_conv", layout)
    x = _bn(x, f"{name}_2_bn", layout)
    x = _residual(shortcut, x, name, drop_rate, f"{name}_add")
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(
    x, filters: int, stride: int, project: bool, name: str, layout: Layout,
    inner_factor: int = 1, drop_rate: float = 0.0,
):
    """1x1 reduce, 3x3, 1x1 expand (x4), plus shortcut (ResNet-50 and deeper, v1)."""
    shortcut = x
    if project:
        shortcut = _conv(x, 4 * filters, 1, f"{name}_0_conv", layout, strides=stride)
        shortcut = _bn(shortcut, f"{name}_0_bn", layout)
    stride_1x1, stride_3x3 = (1, stride) if layout.stride_on_3x3 else (stride, 1)
    inner = filters * inner_factor
    x = _conv(x, inner, 1, f"{name}_1_conv", layout, strides=stride_1x1)
    x = _bn(x, f"{name}_1_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, inner, 3, f"{name}_2_conv", layout, strides=stride_3x3)
    x = _bn(x, f"{name}_2_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, 4 * filters, 1, f"{name}_3_conv", layout)
    x = _bn(x, f"{name}_3_bn", layout)
    x = _residual(shortcut, x, name, drop_rate, f"{name}_add")
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def preact_block(
    x, filters: int, stride: int, project: bool, name: str, layout: Layout, drop_rate: float = 0.0
):
    """Pre-activation bottleneck (ResNet v2): BN-ReLU before each convolution.

    Nothing follows the addition. As in keras.applications, the stride sits on the 3x3
    convolution, the inner convolutions have no bias, and an unprojected strided shortcut
    subsamples.
    """
    preact = _bn(x, f"{name}_preact_bn", layout)
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if project:
        shortcut = _conv(preact, 4 * filters, 1, f"{name}_0_conv", layout, strides=stride)
    elif stride > 1:
        shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    x = _conv(preact, filters, 1, f"{name}_1_conv", layout, bias=False)
    x = _bn(x, f"{name}_1_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = keras.layers.Conv2D(
        filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv"
    )(x)
    x = _bn(x, f"{name}_2_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, 4 * filters, 1, f"{name}_3_conv", layout)
    return _residual(shortcut, x, name, drop_rate, f"{name}_out")


def bit_block(
    x, filters: int, stride: int, project: bool, name: str, layout: Layout, drop_rate: float = 0.0
):
    """BiT's pre-activation bottleneck: GroupNorm-ReLU before each standardized convolution.

    Unlike keras.applications' v2, BiT downsamples in the *first* block of a stage (the
    paper's placement), with the stride on the 3x3 convolution, and projects the shortcut
    from the pre-activated input whenever the shape changes.
    """
    preact = _bn(x, f"{name}_preact_gn", layout)
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    shortcut = x
    if project:
        shortcut = _conv(preact, 4 * filters, 1, f"{name}_0_conv", layout, strides=stride)
    x = _conv(preact, filters, 1, f"{name}_1_conv", layout)
    x = _bn(x, f"{name}_1_gn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, filters, 3, f"{name}_2_conv", layout, strides=stride)
    x = _bn(x, f"{name}_2_gn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, 4 * filters, 1, f"{name}_3_conv", layout)
    return _residual(shortcut, x, name, drop_rate, f"{name}_out")


def _stage(x, config: ResNetConfig, index: int, filters: int, drop_rates: list[float]):
    name = f"conv{index + 2}"
    stride = 1 if index == 0 else 2
    layout = config.layout
    blocks = config.blocks_per_stage[index]
    for b in range(1, blocks + 1):
        block_name = f"{name}_block{b}"
        rate = drop_rates[b - 1]
        if config.block == "preact":
            # keras.applications' v2 stacks downsample in their *last* block (and conv5
            # not at all), so the weights line up only with that placement.
            block_stride = (2 if index < 3 else 1) if b == blocks else 1
            x = preact_block(x, filters, block_stride, b == 1, block_name, layout, rate)
        elif config.block == "bit":
            s = stride if b == 1 else 1
            x = bit_block(x, filters, s, b == 1, block_name, layout, rate)
        elif config.block == "basic":
            s = stride if b == 1 else 1
            x = basic_block(x, filters, s, b == 1 and s != 1, block_name, layout, rate)
        else:
            s = stride if b == 1 else 1
            x = bottleneck_block(
                x, filters, s, b == 1, block_name, layout, config.inner_width_factor, rate
            )
    return x


def _drop_path_schedule(config: ResNetConfig, drop_path_rate: float) -> list[list[float]]:
    """Per-block drop rates, rising linearly from 0 to `drop_path_rate` at the last block.

    The linear rule of the stochastic depth paper (Huang et al., 2016), as timm applies it.
    """
    if (
        isinstance(drop_path_rate, bool)
        or not isinstance(drop_path_rate, int | float)
        or not 0.0 <= drop_path_rate < 1.0
    ):
        raise ValueError(
            f"Invalid value for argument `drop_path_rate`: {drop_path_rate!r}. "
            "Expected a number in [0, 1)."
        )
    total = sum(config.blocks_per_stage)
    rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    schedule, start = [], 0
    for blocks in config.blocks_per_stage:
        schedule.append(rates[start:start + blocks])
        start += blocks
    return schedule


def _resnet(variant: str, kwargs: dict, drop_path_rate: float = 0.0) -> keras.Model:
    config = CONFIGS[variant]
    layout = config.layout
    schedule = _drop_path_schedule(config, drop_path_rate)
    spec = heads.resolve(variant, kwargs)
    inputs, x = heads.stem(spec)
    wide = config.width_multiplier
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    conv = ka_layers.StandardizedConv2D if layout.weight_standardization else keras.layers.Conv2D
    x = conv(64 * wide, 7, strides=2, use_bias=layout.conv_bias, name="conv1_conv")(x)
    if config.block in ("basic", "bottleneck"):
        x = _bn(x, "conv1_bn", layout)
        x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for index, filters in enumerate(config.widths):
        x = _stage(x, config, index, filters * wide, schedule[index])
    if config.block == "preact":
        x = _bn(x, "post_bn", layout)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    elif config.block == "bit":
        x = _bn(x, "post_gn", layout)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))


_V1 = "Deep Residual Learning for Image Recognition (He et al.)"
_V2 = "Identity Mappings in Deep Residual Networks (He et al.)"
_WIDE = "Wide Residual Networks (Zagoruyko, Komodakis)"
_COMMON = dict(input_shape=(224, 224, 3), min_size=32)
_TV = "torchvision 0.29 (trainable); total adds BatchNorm moving mean/variance"
_KA = "keras.applications 3.15"


@register(paper=_V1, year=2015, preprocessing="torch", **_COMMON,
          params=ParamCounts(11_699_112, 11_689_512, _TV))
def resnet18(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-18 (He et al., 2015), torchvision layout (11,689,512 trainable parameters).

    Basic blocks (two 3x3 convolutions), no convolution biases, torchvision's ImageNet
    mean/std normalization. Any input size >= 32, with or without the head.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet18", kwargs, drop_path_rate)


@register(paper=_V1, year=2015, preprocessing="torch", **_COMMON,
          params=ParamCounts(21_814_696, 21_797_672, _TV))
def resnet34(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-34 (He et al., 2015), torchvision layout (21,797,672 trainable parameters).

    Same conventions as `resnet18`.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet34", kwargs, drop_path_rate)


@register(paper=_V1, year=2015, preprocessing="caffe", imagenet_weights=True, **_COMMON,
          params=ParamCounts(25_636_712, 25_583_592, f"{_KA} ResNet50"))
def resnet50(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-50 (He et al., 2015), graph- and weight-compatible with keras.applications.

    Bottleneck blocks with the stride on the first 1x1 convolution (the paper's and the
    caffe models' placement; torchvision's "v1.5" moves it to the 3x3) and biases on every
    convolution, so `weights="imagenet"` loads the Keras Applications file. Caffe
    normalization (BGR minus the ImageNet mean).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet50", kwargs, drop_path_rate)


@register(paper=_V1, year=2015, preprocessing="caffe", imagenet_weights=True, **_COMMON,
          params=ParamCounts(44_707_176, 44_601_832, f"{_KA} ResNet101"))
def resnet101(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-101 (He et al., 2015); same conventions and compatibility as `resnet50`.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet101", kwargs, drop_path_rate)


@register(paper=_V1, year=2015, preprocessing="caffe", imagenet_weights=True, **_COMMON,
          params=ParamCounts(60_419_944, 60_268_520, f"{_KA} ResNet152"))
def resnet152(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-152 (He et al., 2015); same conventions and compatibility as `resnet50`.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet152", kwargs, drop_path_rate)


@register(paper=_WIDE, year=2016, preprocessing="torch", **_COMMON,
          params=ParamCounts(68_951_464, 68_883_240, _TV))
def wide_resnet50_2(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """Wide ResNet-50-2 (Zagoruyko and Komodakis, 2016), torchvision layout.

    ResNet-50 with the inner (3x3) width of every bottleneck doubled; the block outputs
    keep ResNet-50's widths. This is torchvision's ImageNet variant, not the paper's
    CIFAR networks (WRN-28-10 and the like).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("wide_resnet50_2", kwargs, drop_path_rate)


@register(paper=_WIDE, year=2016, preprocessing="torch", **_COMMON,
          params=ParamCounts(127_024_552, 126_886_696, _TV))
def wide_resnet101_2(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """Wide ResNet-101-2, torchvision layout; see `wide_resnet50_2`.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("wide_resnet101_2", kwargs, drop_path_rate)


@register(paper=_V2, year=2016, preprocessing="tf", imagenet_weights=True, **_COMMON,
          params=ParamCounts(25_613_800, 25_568_360, f"{_KA} ResNet50V2"))
def resnet50v2(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-50 v2 (He et al., 2016): pre-activation blocks, compatible with keras.applications.

    Departs from the paper where keras.applications does, to load its weights: each
    stage downsamples in its last block instead of its first. Inputs scaled to [-1, 1].

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet50v2", kwargs, drop_path_rate)


@register(paper=_V2, year=2016, preprocessing="tf", imagenet_weights=True, **_COMMON,
          params=ParamCounts(44_675_560, 44_577_896, f"{_KA} ResNet101V2"))
def resnet101v2(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-101 v2 (He et al., 2016); see `resnet50v2`.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet101v2", kwargs, drop_path_rate)


@register(paper=_V2, year=2016, preprocessing="tf", imagenet_weights=True, **_COMMON,
          params=ParamCounts(60_380_648, 60_236_904, f"{_KA} ResNet152V2"))
def resnet152v2(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """ResNet-152 v2 (He et al., 2016); see `resnet50v2`.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet152v2", kwargs, drop_path_rate)


_BIT = "Big Transfer (BiT): General Visual Representation Learning (Kolesnikov et al.)"
_TIMM = "timm 1.0 resnetv2_{}_bit (trainable; GroupNorm has no moving statistics)"


@register(paper=_BIT, year=2019, preprocessing="tf", **_COMMON,
          params=ParamCounts(25_549_352, 25_549_352, _TIMM.format("50x1")))
def bit_r50x1(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """BiT-R50x1 (Kolesnikov et al., 2019): ResNet-50 v2 with GroupNorm and Weight Standardization.

    Every BatchNorm of the pre-activation ResNet is a GroupNorm (32 groups, epsilon 1e-5)
    and every convolution is weight-standardized (`kerasarch.layers.StandardizedConv2D`),
    so nothing depends on the batch: BiT fine-tunes at any batch size, even 1. Unlike
    `resnet50v2` (keras.applications' layout), each stage downsamples in its first block,
    as in the paper and BiT's code, and the shortcut projection reads the pre-activated
    input. Inputs scaled to [-1, 1]. 25,549,352 parameters, as timm counts them.

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("bit_r50x1", kwargs, drop_path_rate)


@register(paper=_BIT, year=2019, preprocessing="tf", **_COMMON,
          params=ParamCounts(217_319_080, 217_319_080, _TIMM.format("50x3")))
def bit_r50x3(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """BiT-R50x3: ResNet-50 v2 with every width x3; see `bit_r50x1` (217,319,080 parameters).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("bit_r50x3", kwargs, drop_path_rate)


@register(paper=_BIT, year=2019, preprocessing="tf", **_COMMON,
          params=ParamCounts(44_541_480, 44_541_480, _TIMM.format("101x1")))
def bit_r101x1(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """BiT-R101x1: ResNet-101 v2 with every width x1; see `bit_r50x1` (44,541,480 parameters).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("bit_r101x1", kwargs, drop_path_rate)


@register(paper=_BIT, year=2019, preprocessing="tf", **_COMMON,
          params=ParamCounts(387_934_888, 387_934_888, _TIMM.format("101x3")))
def bit_r101x3(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """BiT-R101x3: ResNet-101 v2 with every width x3; see `bit_r50x1` (387,934,888 parameters).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("bit_r101x3", kwargs, drop_path_rate)


@register(paper=_BIT, year=2019, preprocessing="tf", **_COMMON,
          params=ParamCounts(236_335_208, 236_335_208, _TIMM.format("152x2")))
def bit_r152x2(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """BiT-R152x2: ResNet-152 v2 with every width x2; see `bit_r50x1` (236,335,208 parameters).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("bit_r152x2", kwargs, drop_path_rate)


@register(paper=_BIT, year=2019, preprocessing="tf", **_COMMON,
          params=ParamCounts(936_533_224, 936_533_224, _TIMM.format("152x4")))
def bit_r152x4(
    *, drop_path_rate: float = 0.0, **kwargs: Unpack[heads.ModelArgs]
) -> keras.Model:
    """BiT-R152x4: ResNet-152 v2 with every width x4; see `bit_r50x1` (936,533,224 parameters).

    Args:
        drop_path_rate: Stochastic depth: the drop probability of the last residual
            block, rising linearly from 0 at the first; inert at inference (default 0).
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("bit_r152x4", kwargs, drop_path_rate)
