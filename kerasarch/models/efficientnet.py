"""EfficientNet (Tan and Le, 2019): one B0 stage table, scaled in depth, width and resolution.

B0's stages (the paper's Table 1), each a run of MBConv blocks (inverted residuals with
squeeze-excitation) after a 3x3 stride-2 stem of 32 filters, and before a 1x1 convolution
to 1280 channels:

    stage  kernel  repeats  filters in -> out  expansion  stride
      1      3        1         32 ->  16         1          1
      2      3        2         16 ->  24         6          2
      3      5        2         24 ->  40         6          2
      4      3        3         40 ->  80         6          2
      5      5        3         80 -> 112         6          1
      6      5        4        112 -> 192         6          2
      7      3        1        192 -> 320         6          1

B1-B7 and L2 multiply every width by `width` (rounded to a multiple of 8, never more
than 10% down) and every stage's repeats by `depth` (rounded up), and run at a larger
`resolution`, as the paper's reference code does. `compound_scaling(phi)` gives the
paper's rule for any phi, and `efficientnet(phi)` builds the network it defines.

The graph, its layer names and its padding are keras.applications': the official files
load by name (`efficientnet_b0` .. `efficientnet_b7`).
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from kerasarch import blocks, heads
from kerasarch.download import WeightFile
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights
from kerasarch.weights_timm import TimmNames, register_names


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of B0's stage table: a run of MBConv blocks.

    Attributes:
        kernel: Depthwise kernel size.
        repeats: Blocks in the stage (B0; scaled by `depth`).
        filters_in: Input channels of the stage's first block (B0; scaled by `width`).
        filters_out: Output channels of every block of the stage (B0; scaled by `width`).
        expansion: Expansion ratio of the inverted residual (1: no expansion convolution).
        stride: Stride of the stage's first block (the others have stride 1).
        se_ratio: Squeeze-excitation width as a fraction of the block's *input* channels.
    """

    kernel: int
    repeats: int
    filters_in: int
    filters_out: int
    expansion: int
    stride: int
    se_ratio: float = 0.25


B0_STAGES = (
    Stage(kernel=3, repeats=1, filters_in=32, filters_out=16, expansion=1, stride=1),
    Stage(kernel=3, repeats=2, filters_in=16, filters_out=24, expansion=6, stride=2),
    Stage(kernel=5, repeats=2, filters_in=24, filters_out=40, expansion=6, stride=2),
    Stage(kernel=3, repeats=3, filters_in=40, filters_out=80, expansion=6, stride=2),
    Stage(kernel=5, repeats=3, filters_in=80, filters_out=112, expansion=6, stride=1),
    Stage(kernel=5, repeats=4, filters_in=112, filters_out=192, expansion=6, stride=2),
    Stage(kernel=3, repeats=1, filters_in=192, filters_out=320, expansion=6, stride=1),
)
STEM_FILTERS = 32
TOP_FILTERS = 1280
DIVISOR = 8  # channel counts are multiples of 8
B0_RESOLUTION = 224


@dataclasses.dataclass(frozen=True)
class EfficientNetConfig:
    """How a variant scales B0: the paper's coefficients and its head's dropout.

    Attributes:
        width: Width coefficient (channels of every layer multiplied by it).
        depth: Depth coefficient (blocks of every stage multiplied by it, rounded up).
        resolution: Native input size.
        dropout: Dropout rate before the classifier.
    """

    width: float
    depth: float
    resolution: int
    dropout: float


# The published coefficients (the reference code's `efficientnet_params`; L2 from the
# Noisy Student paper). They are not alpha**phi, beta**phi, gamma**phi: see `efficientnet`.
CONFIGS = {
    "efficientnet_b0": EfficientNetConfig(width=1.0, depth=1.0, resolution=224, dropout=0.2),
    "efficientnet_b1": EfficientNetConfig(width=1.0, depth=1.1, resolution=240, dropout=0.2),
    "efficientnet_b2": EfficientNetConfig(width=1.1, depth=1.2, resolution=260, dropout=0.3),
    "efficientnet_b3": EfficientNetConfig(width=1.2, depth=1.4, resolution=300, dropout=0.3),
    "efficientnet_b4": EfficientNetConfig(width=1.4, depth=1.8, resolution=380, dropout=0.4),
    "efficientnet_b5": EfficientNetConfig(width=1.6, depth=2.2, resolution=456, dropout=0.4),
    "efficientnet_b6": EfficientNetConfig(width=1.8, depth=2.6, resolution=528, dropout=0.5),
    "efficientnet_b7": EfficientNetConfig(width=2.0, depth=3.1, resolution=600, dropout=0.5),
    "efficientnet_l2": EfficientNetConfig(width=4.3, depth=5.3, resolution=800, dropout=0.5),
}

# The reference code's initializers (keras.applications uses the same): He-normal on
# fan-out for convolutions.
CONV_INIT = keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")
# Keras' BatchNormalization defaults, written out: the TF reference code trained with
# epsilon 1e-3 and momentum 0.99 (PyTorch's default epsilon 1e-5 would shift every
# activation of the published weights).
BN_EPSILON, BN_MOMENTUM = 1e-3, 0.99


def round_filters(filters: int, width: float, divisor: int = DIVISOR) -> int:
    """Channels scaled by `width`, to the nearest multiple of `divisor`, never 10% below.

    The rule of the paper's reference code (and keras.applications').
    """
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks of a stage scaled by `depth`, rounded up (the reference code's rule)."""
    return int(math.ceil(depth * repeats))


def block_letter(index: int) -> str:
    """`a`, `b`, ... for a block's position in its stage (keras' names); `aa`.. past `z`."""
    if index < 26:
        return chr(97 + index)
    return chr(96 + index // 26) + chr(97 + index % 26)


def _conv_bn(x, filters: int, kernel: int, name: str, bn_name: str, activation: str | None):
    """1x1 (or stem) convolution without bias, BatchNorm, optional swish."""
    x = keras.layers.Conv2D(
        filters, kernel, padding="same", use_bias=False, kernel_initializer=CONV_INIT, name=name
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=bn_name)(x)
    if activation is None:
        return x
    return keras.layers.Activation(activation, name=bn_name.replace("_bn", "_activation"))(x)


def mbconv(x, stage: Stage, filters_in: int, filters_out: int, stride: int, drop_rate: float,
           name: str):
    """MBConv: 1x1 expansion, depthwise convolution, squeeze-excitation, linear 1x1 projection.

    The inverted residual of MobileNetV2 with squeeze-excitation and swish. The shortcut
    exists where the shape is kept; its branch is dropped per sample in training with
    probability `drop_rate` (stochastic depth, the paper's "drop connect").
    Layer names are keras.applications' (`{name}expand_conv`, `{name}dwconv`, ...).
    """
    inputs = x
    filters = filters_in * stage.expansion
    if stage.expansion != 1:
        x = _conv_bn(x, filters, 1, f"{name}expand_conv", f"{name}expand_bn", "swish")
    x, padding = blocks.pad_for_conv(x, stage.kernel, stride, "keras", f"{name}dwconv")
    x = keras.layers.DepthwiseConv2D(
        stage.kernel, strides=stride, padding=padding, use_bias=False,
        depthwise_initializer=CONV_INIT, name=f"{name}dwconv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}bn")(x)
    x = keras.layers.Activation("swish", name=f"{name}activation")(x)
    if 0 < stage.se_ratio <= 1:
        squeeze = max(1, int(filters_in * stage.se_ratio))
        x = blocks.squeeze_excite(x, squeeze, f"{name}se", activation="swish")
    x = _conv_bn(x, filters_out, 1, f"{name}project_conv", f"{name}project_bn", None)
    if stride == 1 and filters_in == filters_out:
        x = blocks.residual(inputs, x, name.rstrip("_"), drop_rate, f"{name}add")
    return x


def backbone(x, config: EfficientNetConfig, drop_connect_rate: float):
    """Stem, the seven scaled stages of MBConv blocks, and the 1x1 top convolution.

    The drop rate of block `i` of `n` is `drop_connect_rate * i / n`, as in the reference
    code (the last block gets slightly less than the full rate).
    """
    x, padding = blocks.pad_for_conv(x, 3, 2, "keras", "stem_conv")
    x = keras.layers.Conv2D(
        round_filters(STEM_FILTERS, config.width), 3, strides=2, padding=padding, use_bias=False,
        kernel_initializer=CONV_INIT, name="stem_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = keras.layers.Activation("swish", name="stem_activation")(x)
    total = sum(round_repeats(stage.repeats, config.depth) for stage in B0_STAGES)
    index = 0
    for number, stage in enumerate(B0_STAGES, start=1):
        filters_in = round_filters(stage.filters_in, config.width)
        filters_out = round_filters(stage.filters_out, config.width)
        for j in range(round_repeats(stage.repeats, config.depth)):
            stride = stage.stride if j == 0 else 1
            block_in = filters_in if j == 0 else filters_out
            rate = drop_connect_rate * index / total
            x = mbconv(x, stage, block_in, filters_out, stride, rate, f"block{number}{block_letter(j)}_")
            index += 1
    return _conv_bn(x, round_filters(TOP_FILTERS, config.width), 1, "top_conv", "top_bn", "swish")


def _check_rate(arg: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid value for argument `{arg}`: {value!r}. Expected a number in [0, 1).")
    return float(value)


def build(variant: str, config: EfficientNetConfig, args: dict) -> keras.Model:
    """Builds an EfficientNet from its scaling and its builder's arguments.

    Args:
        variant: Registry name whose metadata (preprocessing, minimum size) applies.
        config: The scaling of B0.
        args: The builder's arguments (`locals()`): the contract, `dropout_rate` and
            `drop_connect_rate`.

    Returns:
        The model.
    """
    dropout = _check_rate("dropout_rate", args["dropout_rate"])
    drop_connect = _check_rate("drop_connect_rate", args["drop_connect_rate"])
    contract = heads.contract_args(args)
    if contract.get("input_shape") is None:
        contract["input_shape"] = (config.resolution, config.resolution, 3)
    spec = heads.resolve(variant, contract)
    inputs, x = heads.image_input(spec)
    x = backbone(x, config, drop_connect)

    def pre_logits(pooled):
        if dropout > 0:
            return keras.layers.Dropout(dropout, name="top_dropout")(pooled)
        return pooled

    return heads.finish(spec, inputs, heads.pooled_head(spec, x, pre_logits=pre_logits))


# --- builders -------------------------------------------------------------------------------

FAMILY_DOC = """\
dropout_rate (float): Dropout before the classifier, in [0, 1); default the variant's
    published rate.
drop_connect_rate (float): Stochastic depth (the reference code's "drop connect"): block
    `i` of `n` drops its residual branch with probability `drop_connect_rate * i / n` in
    training; inert at inference. The paper trained with 0.2."""

RECIPE = Recipe(
    "rmsprop", 0.016, 256, schedule="step", step_epochs=2.4, step_factor=1 / 0.97,
    warmup_epochs=5, weight_decay=1e-5, label_smoothing=0.1, epochs=350,
    source="Tan & Le 2019, sec. 5.2: RMSProp (decay 0.9, momentum 0.9), lr 0.256 at batch "
    "4096 decayed by 0.97 every 2.4 epochs, weight decay 1e-5 (an L2 term in the paper, "
    "decoupled here), 350 epochs; warmup and label smoothing 0.1 from the reference code",
)

_PAPER = "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks (Tan, Le)"
# keras.applications' totals count 7 more: the statistics of its `normalization` layer
# (mean, variance, count), which kerasarch's constant preprocessing does not have.
# timm's `tf_efficientnet_*` names (TF "same" padding, BatchNorm epsilon 1e-3, as here) ...
TIMM_FIXED = {"stem_conv": "conv_stem", "stem_bn": "bn1", "top_conv": "conv_head", "top_bn": "bn2",
              "predictions": "classifier"}
# ... block `block{S}{letter}` is `blocks.{S-1}.{letter index}`: stage 1 has no expansion
# (timm's DepthwiseSeparableConv), the others are inverted residuals.
_SE = {"se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand"}
TIMM_STAGE1 = {"dwconv": "conv_dw", "bn": "bn1", **_SE, "project_conv": "conv_pw", "project_bn": "bn2"}
TIMM_BLOCK = {"expand_conv": "conv_pw", "expand_bn": "bn1", "dwconv": "conv_dw", "bn": "bn2", **_SE,
              "project_conv": "conv_pwl", "project_bn": "bn3"}
_TIMM_LAYER = re.compile(r"block(\d)([a-z]{1,2})_(\w+)")


def timm_module(layer: str) -> str | None:
    """The timm module of an EfficientNet layer (`TIMM_FIXED`, `TIMM_STAGE1`, `TIMM_BLOCK`)."""
    match = _TIMM_LAYER.fullmatch(layer)
    if match is None:
        return TIMM_FIXED.get(layer)
    stage, letters, part = int(match[1]), match[2], match[3]
    # The inverse of `block_letter`: a..z are 0..25, then aa is 26.
    index = ord(letters[-1]) - 97 + (26 * (ord(letters[0]) - 96) if len(letters) == 2 else 0)
    table = TIMM_STAGE1 if stage == 1 else TIMM_BLOCK
    return f"blocks.{stage - 1}.{index}.{table[part]}" if part in table else None


register_names(TimmNames(timm_module, head="classifier", architectures={
    f"efficientnet_{v}": f"tf_efficientnet_{v}" for v in (*(f"b{i}" for i in range(8)), "l2")
}))

_KA = "keras.applications 3.15 EfficientNet{} (its total less its normalization layer's 7)"
# Keras' EfficientNet files are at the root of its bucket, not under tensorflow/ like
# the others (`keras_applications_file`), so the file is spelled out.
_BUCKET = "https://storage.googleapis.com/keras-applications/"
# The official files hold keras' `normalization` layer (mean [0.485, 0.456, 0.406] and, in
# its variance slot, the standard deviations [0.229, 0.224, 0.225]; keras then divides by
# another sqrt(std) when weights="imagenet": tensorflow/tensorflow#49930). Together that is
# torchvision's mean/std normalization, which kerasarch's "torch" preprocessing computes in
# every graph, so the file's layer is skipped.
_IGNORE = ("normalization",)


def _keras_files(variant: str, top: str, notop: str) -> ImageNetWeights:
    stem = f"{_BUCKET}efficientnet{variant}"
    return ImageNetWeights(WeightFile(f"{stem}.h5", top, "md5"), WeightFile(f"{stem}_notop.h5", notop, "md5"),
                           ignore=_IGNORE)


def _register(variant: str, total: int, trainable: int, top: str, notop: str, accuracy=()):
    config = CONFIGS[f"efficientnet_{variant}"]
    return register(
        paper=_PAPER, year=2019, input_shape=(config.resolution, config.resolution, 3),
        preprocessing="torch", min_size=32, recipe=RECIPE, twin=f"efficientnet.EfficientNet{variant.upper()}",
        imagenet=_keras_files(variant, top, notop), accuracy=accuracy,
        params=ParamCounts(total, trainable, _KA.format(variant.upper())),
    )


_TIMM = "timm results-imagenet.csv"


@_register("b0", 5_330_564, 5_288_548, "902e53a9f72be733fc0bcb005b3ebbac",
           "50bc09e76180e00e4465e1a485ddc09d",
           (PublishedAccuracy(76.54, "timm tf_efficientnet_b0.in1k", _TIMM, 224),
            PublishedAccuracy(78.68, "timm tf_efficientnet_b0.ns_jft_in1k", _TIMM, 224)))
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b0(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.2, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B0 (Tan and Le, 2019), graph- and weight-compatible with keras.applications.

    The B0 stage table of MBConv blocks (inverted residuals with squeeze-excitation and
    swish) found by the paper's architecture search, 224x224 input. Layer names, TF-"same"
    padding (`blocks.keras_pad` before strided convolutions) and BatchNorm epsilon 1e-3 are
    keras.applications', so `weights="imagenet"` loads its file. Departure from keras: the
    input normalization is torchvision's mean/std in every graph, which is what the
    official files expect (keras adds a correction layer only when `weights="imagenet"`).
    """
    return build("efficientnet_b0", CONFIGS["efficientnet_b0"], locals())


@_register("b1", 7_856_232, 7_794_184, "1d254153d4ab51201f1646940f018540",
           "74c4e6b3e1f6a1eea24c589628592432")
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b1(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.2, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B1: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (7,794,184 trainable)."""
    return build("efficientnet_b1", CONFIGS["efficientnet_b1"], locals())


@_register("b2", 9_177_562, 9_109_994, "b15cce36ff4dcbd00b6dd88e7857a6ad",
           "111f8e2ac8aa800a7a99e3239f7bfb39")
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.3, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B2: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (9,109,994 trainable)."""
    return build("efficientnet_b2", CONFIGS["efficientnet_b2"], locals())


@_register("b3", 12_320_528, 12_233_232, "ffd1fdc53d0ce67064dc6a9c7960ede0",
           "af6d107764bb5b1abb91932881670226")
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b3(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.3, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B3: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (12,233,232 trainable)."""
    return build("efficientnet_b3", CONFIGS["efficientnet_b3"], locals())


@_register("b4", 19_466_816, 19_341_616, "18c95ad55216b8f92d7e70b3a046e2fc",
           "ebc24e6d6c33eaebbd558eafbeedf1ba")
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b4(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.4, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B4: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (19,341,616 trainable)."""
    return build("efficientnet_b4", CONFIGS["efficientnet_b4"], locals())


@_register("b5", 30_562_520, 30_389_784, "ace28f2a6363774853a83a0b21b9421a",
           "38879255a25d3c92d5e44e04ae6cec6f")
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b5(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.4, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B5: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (30,389,784 trainable)."""
    return build("efficientnet_b5", CONFIGS["efficientnet_b5"], locals())


@_register("b6", 43_265_136, 43_040_704, "165f6e37dce68623721b423839de8be5",
           "9ecce42647a20130c1f39a5d4cb75743")
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b6(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.5, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B6: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (43,040,704 trainable)."""
    return build("efficientnet_b6", CONFIGS["efficientnet_b6"], locals())


@_register("b7", 66_658_680, 66_347_960, "8c03f828fec3ef71311cd463b6759d99",
           "cbcfe4450ddf6f3ad90b1b398090fe4a",
           (PublishedAccuracy(86.85, "timm tf_efficientnet_b7.ns_jft_in1k", _TIMM, 600),))
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_b7(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.5, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-B7: B0 scaled (see `CONFIGS`); as `efficientnet_b0` (66,347,960 trainable)."""
    return build("efficientnet_b7", CONFIGS["efficientnet_b7"], locals())


@register(
    paper="Self-training with Noisy Student improves ImageNet classification (Xie, Luong, Hovy, Le)",
    year=2019, input_shape=(800, 800, 3), preprocessing="torch", min_size=32, recipe=RECIPE,
    params=ParamCounts(481_399_996, 480_309_308, "timm 1.0 tf_efficientnet_l2 (trainable); total "
                       "adds BatchNorm moving mean/variance (2 x 545,344 channels)"),
    accuracy=(PublishedAccuracy(88.4, "paper (Noisy Student, JFT-300M unlabeled)",
                                "Xie et al. 2019, Table 2", 800),
              PublishedAccuracy(88.36, "timm tf_efficientnet_l2.ns_jft_in1k", _TIMM, 800)),
)
@heads.contract_docstring(FAMILY_DOC)
def efficientnet_l2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, dropout_rate=0.5, drop_connect_rate=0.2) -> keras.Model:
    """EfficientNet-L2 (Xie et al., 2019): B0 at width 4.3, depth 5.3, 800x800 (Noisy Student).

    480,309,308 trainable parameters, as timm counts them (`tf_efficientnet_l2`); built as
    `efficientnet_b0` with the L2 coefficients. keras.applications has no L2, so no
    `weights="imagenet"`; timm's ported Noisy Student weights use the same TF-"same"
    padding and BatchNorm epsilon 1e-3 as this graph. A forward pass at 800x800 takes
    minutes per image on a 2-core CPU: use a smaller `input_shape` to experiment.
    """
    return build("efficientnet_l2", CONFIGS["efficientnet_l2"], locals())
