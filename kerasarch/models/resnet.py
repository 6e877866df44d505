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
    resnet50_tv / 101_tv / 152_tv: "ResNet v1.5", torchvision's and timm's layout of 50/101/152

Each row of `CONFIGS` holds its block function and its downsampling rule, so the stage
loop has no case analysis; BiT (`kerasarch.models.bit`) reuses this machinery with its own
block. Two layouts exist in the reference libraries and both are kept, so weights port 1:1:
`KERAS` (keras.applications and the original caffe models: convolutions with biases,
stride on the first 1x1 convolution of a bottleneck) and `TORCHVISION` (no biases, stride
on the 3x3 convolution, "ResNet v1.5").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from kerasarch import blocks, heads
from kerasarch import layers as ka_layers
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file


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


def first_block_downsamples(stage: int, block: int, blocks: int) -> int:
    """The paper's rule: every stage but the first halves the size in its first block."""
    return 2 if stage > 0 and block == 1 else 1


def last_block_downsamples(stage: int, block: int, blocks: int) -> int:
    """keras.applications' ResNetV2 rule: stages 1-3 halve the size in their last block."""
    return 2 if stage < 3 and block == blocks else 1


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """One row of the stage table: the block function, the downsampling rule and the widths.

    Attributes:
        block: `block(x, filters, stride, first, name, config, drop_rate)` -> tensor;
            `first` is True for the first block of a stage (where shortcuts project).
        blocks_per_stage: Number of blocks of each of the four stages.
        layout: The reference implementation's conventions.
        downsample: `rule(stage, block, blocks)` -> the block's stride (1-based block).
        widths: Base width of each stage.
        inner_width_factor: Wide ResNet widens the 3x3 convolution of a bottleneck.
        width_multiplier: BiT widens every convolution, the stem included.
        post_norm: Pre-activation networks end with a normalization and ReLU under this
            name (and leave the stem unnormalized); None for v1, which normalizes the stem.
    """

    block: Callable[..., keras.KerasTensor]
    blocks_per_stage: tuple[int, int, int, int]
    layout: Layout
    downsample: Callable[[int, int, int], int] = first_block_downsamples
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    inner_width_factor: int = 1
    width_multiplier: int = 1
    post_norm: str | None = None


def norm(x, name: str, layout: Layout):
    """The layout's normalization: BatchNorm, or GroupNorm for BiT."""
    if layout.norm == "group":
        return keras.layers.GroupNormalization(
            groups=layout.groups, epsilon=layout.norm_epsilon, name=name
        )(x)
    return keras.layers.BatchNormalization(
        epsilon=layout.norm_epsilon, momentum=layout.bn_momentum, name=name
    )(x)


def conv(x, filters: int, kernel: int, name: str, layout: Layout, strides: int = 1, bias=None):
    """A convolution of the layout (weight-standardized for BiT), padded symmetrically.

    Every ResNet reference (caffe, keras.applications, torchvision, BiT) pads strided 3x3
    and 7x7 convolutions symmetrically; TF "same" would pad only bottom/right at stride 2
    on even sizes and shift the sampling grid.
    """
    x, padding = blocks.pad_for_conv(x, kernel, strides, "torch", name)
    layer = ka_layers.StandardizedConv2D if layout.weight_standardization else keras.layers.Conv2D
    return layer(
        filters, kernel, strides=strides, padding=padding,
        use_bias=layout.conv_bias if bias is None else bias, name=name,
    )(x)




def basic_block(x, filters: int, stride: int, first: bool, name: str, config: ResNetConfig,
                drop_rate: float = 0.0):
    """Two 3x3 convolutions and an identity (or projected) shortcut (ResNet-18/34)."""
    layout = config.layout
    shortcut = x
    if first and stride != 1:
        shortcut = conv(x, filters, 1, f"{name}_0_conv", layout, strides=stride)
        shortcut = norm(shortcut, f"{name}_0_bn", layout)
    x = conv(x, filters, 3, f"{name}_1_conv", layout, strides=stride)
    x = norm(x, f"{name}_1_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = conv(x, filters, 3, f"{name}_2_conv", layout)
    x = norm(x, f"{name}_2_bn", layout)
    x = blocks.residual(shortcut, x, name, drop_rate, f"{name}_add")
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x, filters: int, stride: int, first: bool, name: str, config: ResNetConfig,
                     drop_rate: float = 0.0):
    """1x1 reduce, 3x3, 1x1 expand (x4), plus shortcut (ResNet-50 and deeper, v1)."""
    layout = config.layout
    shortcut = x
    if first:
        shortcut = conv(x, 4 * filters, 1, f"{name}_0_conv", layout, strides=stride)
        shortcut = norm(shortcut, f"{name}_0_bn", layout)
    stride_1x1, stride_3x3 = (1, stride) if layout.stride_on_3x3 else (stride, 1)
    inner = filters * config.inner_width_factor
    x = conv(x, inner, 1, f"{name}_1_conv", layout, strides=stride_1x1)
    x = norm(x, f"{name}_1_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = conv(x, inner, 3, f"{name}_2_conv", layout, strides=stride_3x3)
    x = norm(x, f"{name}_2_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = conv(x, 4 * filters, 1, f"{name}_3_conv", layout)
    x = norm(x, f"{name}_3_bn", layout)
    x = blocks.residual(shortcut, x, name, drop_rate, f"{name}_add")
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def preact_block(x, filters: int, stride: int, first: bool, name: str, config: ResNetConfig,
                 drop_rate: float = 0.0):
    """Pre-activation bottleneck (ResNet v2): BN-ReLU before each convolution.

    Nothing follows the addition. As in keras.applications, the stride sits on the 3x3
    convolution, the inner convolutions have no bias, and an unprojected strided shortcut
    subsamples.
    """
    layout = config.layout
    preact = norm(x, f"{name}_preact_bn", layout)
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if first:
        shortcut = conv(preact, 4 * filters, 1, f"{name}_0_conv", layout, strides=stride)
    elif stride > 1:
        shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    x = conv(preact, filters, 1, f"{name}_1_conv", layout, bias=False)
    x = norm(x, f"{name}_1_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    # keras.applications pads explicitly at every stride (a layer its graph names).
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = norm(x, f"{name}_2_bn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = conv(x, 4 * filters, 1, f"{name}_3_conv", layout)
    return blocks.residual(shortcut, x, name, drop_rate, f"{name}_out")


def _stage(x, config: ResNetConfig, index: int, drop_rates: list[float]):
    filters = config.widths[index] * config.width_multiplier
    count = config.blocks_per_stage[index]
    for b in range(1, count + 1):
        stride = config.downsample(index, b, count)
        name = f"conv{index + 2}_block{b}"
        x = config.block(x, filters, stride, b == 1, name, config, drop_rates[b - 1])
    return x


def build(variant: str, config: ResNetConfig, args: dict) -> keras.Model:
    """Builds a ResNet-family model from its config row and its builder's arguments.

    Args:
        variant: Registry name.
        config: The stage table row.
        args: The builder's arguments (`locals()`): the contract and `drop_path_rate`.

    Returns:
        The model.
    """
    schedule = blocks.drop_path_schedule(config.blocks_per_stage, args["drop_path_rate"])
    spec = heads.resolve(variant, heads.contract_args(args))
    layout = config.layout
    inputs, x = heads.image_input(spec)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    stem = ka_layers.StandardizedConv2D if layout.weight_standardization else keras.layers.Conv2D
    x = stem(64 * config.width_multiplier, 7, strides=2, use_bias=layout.conv_bias,
             name="conv1_conv")(x)
    if config.post_norm is None:
        x = norm(x, "conv1_bn", layout)
        x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for index in range(len(config.widths)):
        x = _stage(x, config, index, schedule[index])
    if config.post_norm is not None:
        x = norm(x, config.post_norm, layout)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))


DROP_PATH_DOC = """\
drop_path_rate (float): Stochastic depth: the drop probability of the last residual
    block, rising linearly from 0 at the first; inert at inference."""

RECIPE = Recipe(
    "sgd", 0.1, 256, schedule="step", step_epochs=30, weight_decay=1e-4, epochs=90,
    source="He et al. 2015, sec. 3.4: batch 256, lr 0.1 /10 on plateaus, momentum 0.9, "
    "weight decay 1e-4; the /10 every 30 epochs of 90 is torchvision's reference",
)

CONFIGS = {
    "resnet18": ResNetConfig(basic_block, (2, 2, 2, 2), TORCHVISION),
    "resnet34": ResNetConfig(basic_block, (3, 4, 6, 3), TORCHVISION),
    "resnet50": ResNetConfig(bottleneck_block, (3, 4, 6, 3), KERAS),
    "resnet101": ResNetConfig(bottleneck_block, (3, 4, 23, 3), KERAS),
    "resnet152": ResNetConfig(bottleneck_block, (3, 8, 36, 3), KERAS),
    "resnet50_tv": ResNetConfig(bottleneck_block, (3, 4, 6, 3), TORCHVISION),
    "resnet101_tv": ResNetConfig(bottleneck_block, (3, 4, 23, 3), TORCHVISION),
    "resnet152_tv": ResNetConfig(bottleneck_block, (3, 8, 36, 3), TORCHVISION),
    "wide_resnet50_2": ResNetConfig(bottleneck_block, (3, 4, 6, 3), TORCHVISION, inner_width_factor=2),
    "wide_resnet101_2": ResNetConfig(bottleneck_block, (3, 4, 23, 3), TORCHVISION, inner_width_factor=2),
    **{
        f"resnet{depth}v2": ResNetConfig(
            preact_block, blocks_per_stage, KERAS, last_block_downsamples, post_norm="post_bn"
        )
        for depth, blocks_per_stage in ((50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)), (152, (3, 8, 36, 3)))
    },
}


def _keras_files(name: str, top: str, notop: str) -> ImageNetWeights:
    """keras.applications' ResNet / ResNetV2 files and their published MD5 digests."""
    stem = f"resnet/{name}_weights_tf_dim_ordering_tf_kernels"
    return ImageNetWeights(
        keras_applications_file(f"{stem}.h5", top), keras_applications_file(f"{stem}_notop.h5", notop)
    )


_V1 = "Deep Residual Learning for Image Recognition (He et al.)"
_V2 = "Identity Mappings in Deep Residual Networks (He et al.)"
_WIDE = "Wide Residual Networks (Zagoruyko, Komodakis)"
_COMMON = dict(input_shape=(224, 224, 3), min_size=32, recipe=RECIPE)
_TV = "torchvision 0.29 (trainable); total adds BatchNorm moving mean/variance"
_KA = "keras.applications 3.15"


@register(paper=_V1, year=2015, preprocessing="torch", **_COMMON,
          params=ParamCounts(11_699_112, 11_689_512, _TV),
          accuracy=(
              PublishedAccuracy(69.758, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(71.50, "timm resnet18.a1_in1k", "timm results-imagenet.csv", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet18(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", include_preprocessing=True, augmentation=None,
             name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-18 (He et al., 2015), torchvision layout (11,689,512 trainable parameters).

    Basic blocks (two 3x3 convolutions), no convolution biases, torchvision's ImageNet
    mean/std normalization. Any input size >= 32, with or without the head.
    """
    return build("resnet18", CONFIGS["resnet18"], locals())


@register(paper=_V1, year=2015, preprocessing="torch", **_COMMON,
          params=ParamCounts(21_814_696, 21_797_672, _TV),
          accuracy=(
              PublishedAccuracy(73.314, "torchvision V1", "torchvision 0.29 meta", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet34(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", include_preprocessing=True, augmentation=None,
             name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-34 (He et al., 2015), torchvision layout (21,797,672 trainable parameters).

    Same conventions as `resnet18`.
    """
    return build("resnet34", CONFIGS["resnet34"], locals())


@register(paper=_V1, year=2015, preprocessing="caffe", twin="resnet.ResNet50", **_COMMON,
          imagenet=_keras_files("resnet50", "2cb95161c43110f7111970584f804107",
                                "4d473c1dd8becc155b73f8504c6f6626"),
          params=ParamCounts(25_636_712, 25_583_592, f"{_KA} ResNet50"),
          accuracy=(
              PublishedAccuracy(76.130, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(74.9, "keras.applications", "keras.io applications table", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet50(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", include_preprocessing=True, augmentation=None,
             name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-50 (He et al., 2015), graph- and weight-compatible with keras.applications.

    Bottleneck blocks with the stride on the first 1x1 convolution (the paper's and the
    caffe models' placement; torchvision's "v1.5" moves it to the 3x3) and biases on every
    convolution, so `weights="imagenet"` loads the Keras Applications file. Caffe
    normalization (BGR minus the ImageNet mean).
    """
    return build("resnet50", CONFIGS["resnet50"], locals())


@register(paper=_V1, year=2015, preprocessing="caffe", twin="resnet.ResNet101", **_COMMON,
          imagenet=_keras_files("resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                                "88cf7a10940856eca736dc7b7e228a21"),
          params=ParamCounts(44_707_176, 44_601_832, f"{_KA} ResNet101"),
          accuracy=(
              PublishedAccuracy(77.374, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(76.4, "keras.applications", "keras.io applications table", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet101(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, augmentation=None,
              name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-101 (He et al., 2015); same conventions and compatibility as `resnet50`."""
    return build("resnet101", CONFIGS["resnet101"], locals())


@register(paper=_V1, year=2015, preprocessing="caffe", twin="resnet.ResNet152", **_COMMON,
          imagenet=_keras_files("resnet152", "100835be76be38e30d865e96f2aaae62",
                                "ee4c566cf9a93f14d82f913c2dc6dd0c"),
          params=ParamCounts(60_419_944, 60_268_520, f"{_KA} ResNet152"),
          accuracy=(
              PublishedAccuracy(78.312, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(76.6, "keras.applications", "keras.io applications table", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet152(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, augmentation=None,
              name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-152 (He et al., 2015); same conventions and compatibility as `resnet50`."""
    return build("resnet152", CONFIGS["resnet152"], locals())


@register(paper=_WIDE, year=2016, preprocessing="torch", **_COMMON,
          params=ParamCounts(68_951_464, 68_883_240, _TV),
          accuracy=(
              PublishedAccuracy(78.468, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(81.61, "timm wide_resnet50_2.tv2_in1k", "timm results-imagenet.csv", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def wide_resnet50_2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, drop_path_rate=0.0) -> keras.Model:
    """Wide ResNet-50-2 (Zagoruyko and Komodakis, 2016), torchvision layout.

    ResNet-50 with the inner (3x3) width of every bottleneck doubled; the block outputs
    keep ResNet-50's widths. This is torchvision's ImageNet variant, not the paper's
    CIFAR networks (WRN-28-10 and the like).
    """
    return build("wide_resnet50_2", CONFIGS["wide_resnet50_2"], locals())


@register(paper=_WIDE, year=2016, preprocessing="torch", **_COMMON,
          params=ParamCounts(127_024_552, 126_886_696, _TV),
          accuracy=(
              PublishedAccuracy(78.848, "torchvision V1", "torchvision 0.29 meta", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def wide_resnet101_2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                     classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                     name=None, drop_path_rate=0.0) -> keras.Model:
    """Wide ResNet-101-2, torchvision layout; see `wide_resnet50_2`."""
    return build("wide_resnet101_2", CONFIGS["wide_resnet101_2"], locals())


@register(paper=_V2, year=2016, preprocessing="tf", twin="resnet_v2.ResNet50V2", **_COMMON,
          imagenet=_keras_files("resnet50v2", "3ef43a0b657b3be2300d5770ece849e0",
                                "fac2f116257151a9d068a22e544a4917"),
          params=ParamCounts(25_613_800, 25_568_360, f"{_KA} ResNet50V2"),
          accuracy=(
              PublishedAccuracy(76.0, "keras.applications", "keras.io applications table", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet50v2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
               classifier_activation="softmax", include_preprocessing=True, augmentation=None,
               name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-50 v2 (He et al., 2016): pre-activation blocks, compatible with keras.applications.

    Departs from the paper where keras.applications does, to load its weights: each
    stage downsamples in its last block instead of its first. Inputs scaled to [-1, 1].
    """
    return build("resnet50v2", CONFIGS["resnet50v2"], locals())


@register(paper=_V2, year=2016, preprocessing="tf", twin="resnet_v2.ResNet101V2", **_COMMON,
          imagenet=_keras_files("resnet101v2", "6343647c601c52e1368623803854d971",
                                "c0ed64b8031c3730f411d2eb4eea35b5"),
          params=ParamCounts(44_675_560, 44_577_896, f"{_KA} ResNet101V2"),
          accuracy=(
              PublishedAccuracy(77.2, "keras.applications", "keras.io applications table", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet101v2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-101 v2 (He et al., 2016); see `resnet50v2`."""
    return build("resnet101v2", CONFIGS["resnet101v2"], locals())


@register(paper=_V2, year=2016, preprocessing="tf", twin="resnet_v2.ResNet152V2", **_COMMON,
          imagenet=_keras_files("resnet152v2", "a49b44d1979771252814e80f8ec446f9",
                                "ed17cf2e0169df9d443503ef94b23b33"),
          params=ParamCounts(60_380_648, 60_236_904, f"{_KA} ResNet152V2"),
          accuracy=(
              PublishedAccuracy(78.0, "keras.applications", "keras.io applications table", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet152v2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-152 v2 (He et al., 2016); see `resnet50v2`."""
    return build("resnet152v2", CONFIGS["resnet152v2"], locals())


# The torchvision / timm layout builders (`resnet50_tv` ...) and timm's names live in their own
# module; importing it here registers them right after this module's, in the same family.
from kerasarch.models import resnet_tv  # noqa: E402, F401
