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
from kerasarch.registry import ParamCounts, register


@dataclasses.dataclass(frozen=True)
class Layout:
    """Conventions that differ between the reference implementations."""

    conv_bias: bool
    bn_epsilon: float
    bn_momentum: float
    stride_on_3x3: bool


# keras.applications: BatchNorm epsilon 1.001e-5 (the caffe models' 1e-5, nudged above
# cuDNN's minimum), Keras' momentum 0.99, biases on every convolution.
KERAS = Layout(conv_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99, stride_on_3x3=False)
# torchvision: epsilon 1e-5, momentum 0.1 in PyTorch's convention (0.9 in Keras'), no biases.
TORCHVISION = Layout(conv_bias=False, bn_epsilon=1e-5, bn_momentum=0.9, stride_on_3x3=True)


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """One row of the stage table."""

    block: str  # "basic", "bottleneck" or "preact" (v2 bottleneck)
    blocks_per_stage: tuple[int, int, int, int]
    layout: Layout
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    inner_width_factor: int = 1  # Wide ResNet widens the 3x3 convolution of a bottleneck


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
}


def _bn(x, name: str, layout: Layout):
    return keras.layers.BatchNormalization(
        epsilon=layout.bn_epsilon, momentum=layout.bn_momentum, name=name
    )(x)


def _conv(x, filters: int, kernel: int, name: str, layout: Layout, strides: int = 1, bias=None):
    if kernel == 3 and strides > 1:
        # Symmetric padding as in the references; Keras "same" pads only bottom/right at
        # stride 2 on even sizes, which shifts the sampling grid.
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return keras.layers.Conv2D(
        filters, kernel, strides=strides, padding=padding,
        use_bias=layout.conv_bias if bias is None else bias, name=name,
    )(x)


def basic_block(x, filters: int, stride: int, project: bool, name: str, layout: Layout):
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
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(
    x, filters: int, stride: int, project: bool, name: str, layout: Layout, inner_factor: int = 1
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
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def preact_block(x, filters: int, stride: int, project: bool, name: str, layout: Layout):
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
    return keras.layers.Add(name=f"{name}_out")([shortcut, x])


def _stage(x, config: ResNetConfig, index: int, blocks: int, filters: int):
    name = f"conv{index + 2}"
    stride = 1 if index == 0 else 2
    layout = config.layout
    for b in range(1, blocks + 1):
        block_name = f"{name}_block{b}"
        if config.block == "preact":
            # keras.applications' v2 stacks downsample in their *last* block (and conv5
            # not at all), so the weights line up only with that placement.
            block_stride = (2 if index < 3 else 1) if b == blocks else 1
            x = preact_block(x, filters, block_stride, b == 1, block_name, layout)
        elif config.block == "basic":
            s = stride if b == 1 else 1
            x = basic_block(x, filters, s, b == 1 and s != 1, block_name, layout)
        else:
            s = stride if b == 1 else 1
            x = bottleneck_block(
                x, filters, s, b == 1, block_name, layout, config.inner_width_factor
            )
    return x


def _resnet(variant: str, kwargs: dict) -> keras.Model:
    config = CONFIGS[variant]
    layout = config.layout
    spec = heads.resolve(variant, kwargs)
    inputs, x = heads.stem(spec)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(64, 7, strides=2, use_bias=layout.conv_bias, name="conv1_conv")(x)
    if config.block != "preact":
        x = _bn(x, "conv1_bn", layout)
        x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for index, (blocks, filters) in enumerate(
        zip(config.blocks_per_stage, config.widths, strict=True)
    ):
        x = _stage(x, config, index, blocks, filters)
    if config.block == "preact":
        x = _bn(x, "post_bn", layout)
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
def resnet18(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-18 (He et al., 2015), torchvision layout (11,689,512 trainable parameters).

    Basic blocks (two 3x3 convolutions), no convolution biases, torchvision's ImageNet
    mean/std normalization. Any input size >= 32, with or without the head.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet18", kwargs)


@register(paper=_V1, year=2015, preprocessing="torch", **_COMMON,
          params=ParamCounts(21_814_696, 21_797_672, _TV))
def resnet34(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-34 (He et al., 2015), torchvision layout (21,797,672 trainable parameters).

    Same conventions as `resnet18`.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet34", kwargs)


@register(paper=_V1, year=2015, preprocessing="caffe", imagenet_weights=True, **_COMMON,
          params=ParamCounts(25_636_712, 25_583_592, f"{_KA} ResNet50"))
def resnet50(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-50 (He et al., 2015), graph- and weight-compatible with keras.applications.

    Bottleneck blocks with the stride on the first 1x1 convolution (the paper's and the
    caffe models' placement; torchvision's "v1.5" moves it to the 3x3) and biases on every
    convolution, so `weights="imagenet"` loads the Keras Applications file. Caffe
    normalization (BGR minus the ImageNet mean).

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet50", kwargs)


@register(paper=_V1, year=2015, preprocessing="caffe", imagenet_weights=True, **_COMMON,
          params=ParamCounts(44_707_176, 44_601_832, f"{_KA} ResNet101"))
def resnet101(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-101 (He et al., 2015); same conventions and compatibility as `resnet50`.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet101", kwargs)


@register(paper=_V1, year=2015, preprocessing="caffe", imagenet_weights=True, **_COMMON,
          params=ParamCounts(60_419_944, 60_268_520, f"{_KA} ResNet152"))
def resnet152(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-152 (He et al., 2015); same conventions and compatibility as `resnet50`.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet152", kwargs)


@register(paper=_WIDE, year=2016, preprocessing="torch", **_COMMON,
          params=ParamCounts(68_951_464, 68_883_240, _TV))
def wide_resnet50_2(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """Wide ResNet-50-2 (Zagoruyko and Komodakis, 2016), torchvision layout.

    ResNet-50 with the inner (3x3) width of every bottleneck doubled; the block outputs
    keep ResNet-50's widths. This is torchvision's ImageNet variant, not the paper's
    CIFAR networks (WRN-28-10 and the like).

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("wide_resnet50_2", kwargs)


@register(paper=_WIDE, year=2016, preprocessing="torch", **_COMMON,
          params=ParamCounts(127_024_552, 126_886_696, _TV))
def wide_resnet101_2(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """Wide ResNet-101-2, torchvision layout; see `wide_resnet50_2`.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("wide_resnet101_2", kwargs)


@register(paper=_V2, year=2016, preprocessing="tf", imagenet_weights=True, **_COMMON,
          params=ParamCounts(25_613_800, 25_568_360, f"{_KA} ResNet50V2"))
def resnet50v2(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-50 v2 (He et al., 2016): pre-activation blocks, compatible with keras.applications.

    Departs from the paper where keras.applications does, to load its weights: each
    stage downsamples in its last block instead of its first. Inputs scaled to [-1, 1].

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet50v2", kwargs)


@register(paper=_V2, year=2016, preprocessing="tf", imagenet_weights=True, **_COMMON,
          params=ParamCounts(44_675_560, 44_577_896, f"{_KA} ResNet101V2"))
def resnet101v2(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-101 v2 (He et al., 2016); see `resnet50v2`.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet101v2", kwargs)


@register(paper=_V2, year=2016, preprocessing="tf", imagenet_weights=True, **_COMMON,
          params=ParamCounts(60_380_648, 60_236_904, f"{_KA} ResNet152V2"))
def resnet152v2(**kwargs: Unpack[heads.ModelArgs]) -> keras.Model:
    """ResNet-152 v2 (He et al., 2016); see `resnet50v2`.

    Args:
        **kwargs: The model contract (`kerasarch.heads.ModelArgs`).

    Returns:
        A `keras.Model`.
    """
    return _resnet("resnet152v2", kwargs)
