"""DenseNet (Huang et al. 2017): every layer of a dense block reads all earlier feature maps.

The paper's Table 1 (DenseNet-BC: bottleneck layers and compression 0.5). After a 7x7
stride-2 stem with `num_init_features` channels and a 3x3 max-pool, four dense blocks
of 1x1-3x3 layers, each layer adding `growth_rate` (k) channels, joined by transitions
(1x1 convolution that compresses the channels, 2x2 average pooling):

    densenet121   k=32   6 12 24 16
    densenet169   k=32   6 12 32 32
    densenet201   k=32   6 12 48 32
    densenet264   k=32   6 12 64 48

The channel rule: layer l of a block whose input has k0 channels receives
k0 + k * (l - 1) channels and adds k; a transition keeps floor(c * compression) of its c.

DenseNet-121/169/201 follow keras.applications layer for layer (same names, same
order), so its official files load 1:1. `densenet(...)` builds any configuration,
torchvision's argument names included (`growth_rate`, `block_config`,
`num_init_features`, `bn_size`, `drop_rate`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re

import keras

from kerasarch import heads
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file
from kerasarch.weights_timm import TimmNames, register_names

# keras.applications' DenseNet uses BatchNorm epsilon 1.001e-5: the original Torch models'
# 1e-5, nudged above cuDNN's minimum (1e-5) when the weights were ported. Kept, so the
# official files give keras' predictions; the momentum is Keras' default 0.99 as there
# (it only matters in training; torchvision's 0.1 is 0.9 in Keras' convention).
BN_EPSILON = 1.001e-5
BN_MOMENTUM = 0.99


@dataclasses.dataclass(frozen=True)
class DenseNetConfig:
    """One row of the paper's Table 1 (DenseNet-BC).

    Attributes:
        growth_rate: Channels each dense layer adds (k).
        block_config: Number of dense layers in each dense block.
        num_init_features: Channels of the 7x7 stem convolution (2k in the paper).
        bn_size: The 1x1 bottleneck of a dense layer has `bn_size * growth_rate` channels.
        compression: A transition keeps `floor(channels * compression)` channels (theta).
    """

    growth_rate: int = 32
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    compression: float = 0.5


CONFIGS = {
    "densenet121": DenseNetConfig(32, (6, 12, 24, 16)),
    "densenet169": DenseNetConfig(32, (6, 12, 32, 32)),
    "densenet201": DenseNetConfig(32, (6, 12, 48, 32)),
    "densenet264": DenseNetConfig(32, (6, 12, 64, 48)),
}


def _invalid(arg: str, value, valid: str) -> ValueError:
    return ValueError(f"Invalid value for argument `{arg}`: {value!r}. {valid}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_config(growth_rate, block_config, num_init_features, bn_size, compression,
                 drop_rate) -> DenseNetConfig:
    """Checks the architecture arguments of `densenet` and returns them as a config.

    Raises:
        ValueError: Naming the argument, the value received and what is valid.
    """
    for arg, value in (("growth_rate", growth_rate), ("num_init_features", num_init_features),
                       ("bn_size", bn_size)):
        if not _is_int(value) or value < 1:
            raise _invalid(arg, value, "Expected an integer >= 1.")
    if (
        not isinstance(block_config, (tuple, list))
        or not block_config
        or not all(_is_int(n) and n >= 1 for n in block_config)
    ):
        raise _invalid(
            "block_config", block_config,
            "Expected a non-empty tuple of integers >= 1 (dense layers per block).",
        )
    if not _is_real(compression) or not 0 < compression <= 1:
        raise _invalid("compression", compression, "Expected a number in (0, 1].")
    if not _is_real(drop_rate) or not 0 <= drop_rate < 1:
        raise _invalid("drop_rate", drop_rate, "Expected a number in [0, 1).")
    return DenseNetConfig(
        int(growth_rate), tuple(int(n) for n in block_config), int(num_init_features),
        int(bn_size), float(compression),
    )


def bn_relu(x, name: str):
    """BatchNorm (keras.applications' epsilon) and ReLU, named `{name}_bn`, `{name}_relu`."""
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                        name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def dense_layer(x, config: DenseNetConfig, name: str, drop_rate: float = 0.0):
    """BN-ReLU-1x1 conv (bn_size * k) - BN-ReLU-3x3 conv (k), concatenated to its input.

    `drop_rate` > 0 adds dropout after the 3x3 convolution, where torchvision puts it (the
    paper drops after every convolution but the first, and only for its CIFAR/SVHN nets
    trained without augmentation); the layer exists only then.
    """
    y = bn_relu(x, f"{name}_0")
    y = keras.layers.Conv2D(config.bn_size * config.growth_rate, 1, use_bias=False,
                            name=f"{name}_1_conv")(y)
    y = bn_relu(y, f"{name}_1")
    # A stride-1 3x3 "same" convolution pads one pixel on every side in every framework.
    y = keras.layers.Conv2D(config.growth_rate, 3, padding="same", use_bias=False,
                            name=f"{name}_2_conv")(y)
    if drop_rate > 0:
        y = keras.layers.Dropout(drop_rate, name=f"{name}_2_drop")(y)
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def transition(x, config: DenseNetConfig, name: str):
    """BN-ReLU, a 1x1 convolution to floor(c * compression) channels, 2x2 average pooling."""
    channels = math.floor(x.shape[-1] * config.compression)
    if channels < 1:
        raise _invalid(
            "compression", config.compression,
            f"{name} would keep floor({x.shape[-1]} * {config.compression}) = 0 channels.",
        )
    x = bn_relu(x, name)
    x = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def min_input_size(config: DenseNetConfig) -> int:
    """Smallest input side the backbone takes: /4 in the stem, /2 per transition, >= 1 left.

    32 for four blocks, as keras.applications states.
    """
    return 2 ** (len(config.block_config) + 1)


def build(variant: str, config: DenseNetConfig, args: dict) -> keras.Model:
    """Builds a DenseNet from its configuration and its builder's arguments.

    Args:
        variant: Registry name.
        config: The checked configuration.
        args: The builder's arguments (`locals()`): the contract and `drop_rate`.

    Returns:
        The model.
    """
    spec = heads.resolve(variant, heads.contract_args(args))
    smallest = min_input_size(config)
    if any(d is not None and d < smallest for d in spec.input_shape[:2]):
        raise _invalid(
            "input_shape", spec.input_shape,
            f"A DenseNet with {len(config.block_config)} blocks needs height and width >= "
            f"{smallest}.",
        )
    inputs, x = heads.image_input(spec)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(config.num_init_features, 7, strides=2, use_bias=False,
                            name="conv1_conv")(x)
    x = bn_relu(x, "conv1")
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for index, layers_in_block in enumerate(config.block_config):
        for layer in range(1, layers_in_block + 1):
            x = dense_layer(x, config, f"conv{index + 2}_block{layer}", args["drop_rate"])
        if index < len(config.block_config) - 1:
            x = transition(x, config, f"pool{index + 2}")
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="bn")(x)
    x = keras.layers.Activation("relu", name="relu")(x)
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))


DROP_RATE_DOC = """\
drop_rate (float): Dropout after the 3x3 convolution of every dense layer, in [0, 1)
    (torchvision's `drop_rate`); inert at inference, no layer when 0."""

CONFIG_DOC = """\
growth_rate (int): Channels each dense layer adds (k), >= 1.
block_config (tuple[int, ...]): Dense layers per block, one entry per block (non-empty).
num_init_features (int): Channels of the 7x7 stem convolution, >= 1.
bn_size (int): The 1x1 bottleneck has `bn_size * growth_rate` channels, bn_size >= 1.
compression (float): A transition keeps floor(channels * compression), in (0, 1]."""

RECIPE = Recipe(
    "sgd", 0.1, 256, schedule="step", step_epochs=30, weight_decay=1e-4, epochs=90,
    source="Huang et al. 2017, sec. 4.2: ImageNet, batch 256, 90 epochs, lr 0.1 /10 at "
    "epochs 30 and 60, weight decay 1e-4, Nesterov momentum 0.9",
)

_PAPER = "Densely Connected Convolutional Networks (Huang et al.)"
_KA = "keras.applications 3.15"
_TV_ACC = "torchvision meta (IMAGENET1K_V1 weights)"
_COMMON = dict(paper=_PAPER, year=2017, input_shape=(224, 224, 3), preprocessing="torch",
               min_size=32, recipe=RECIPE)


# timm's (and torchvision's) names: the stem, final norm and head ...
TIMM_FIXED = {
    "conv1_conv": "features.conv0", "conv1_bn": "features.norm0", "bn": "features.norm5",
    "predictions": "classifier",
}
# ... dense layer `conv{S}_block{L}` is `features.denseblock{S-1}.denselayer{L}`, transition
# `pool{S}` is `features.transition{S-1}`; the layers inside them:
TIMM_PARTS = {
    "0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2", "bn": "norm", "conv": "conv",
}
_TIMM_LAYER = re.compile(r"(?:conv(\d)_block(\d+)_(\d_(?:bn|conv))|pool(\d)_(bn|conv))")


def timm_module(layer: str) -> str | None:
    """The timm module of a DenseNet layer (`TIMM_FIXED`, `TIMM_PARTS`)."""
    if layer in TIMM_FIXED:
        return TIMM_FIXED[layer]
    match = _TIMM_LAYER.fullmatch(layer)
    if match is None:
        return None
    stage, dense_layer_index, part, pool_stage, pool_part = match.groups()
    if stage is not None:
        return f"features.denseblock{int(stage) - 1}.denselayer{dense_layer_index}.{TIMM_PARTS[part]}"
    return f"features.transition{int(pool_stage) - 1}.{TIMM_PARTS[pool_part]}"


register_names(TimmNames(timm_module, head="classifier",
                         architectures={n: n for n in ("densenet121", "densenet169", "densenet201")}))


def _keras_files(name: str, top: str, notop: str) -> ImageNetWeights:
    """keras.applications' DenseNet files and their published MD5 digests."""
    stem = f"densenet/{name}_weights_tf_dim_ordering_tf_kernels"
    return ImageNetWeights(
        keras_applications_file(f"{stem}.h5", top), keras_applications_file(f"{stem}_notop.h5", notop)
    )


@register(**_COMMON, params=ParamCounts(8_062_504, 7_978_856, f"{_KA} DenseNet121 (the default)"))
@heads.contract_docstring(CONFIG_DOC + "\n" + DROP_RATE_DOC)
def densenet(*, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
             compression=0.5, drop_rate=0.0, include_top=True, weights=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax",
             include_preprocessing=True, augmentation=None, name=None) -> keras.Model:
    """Any DenseNet-BC (Huang et al., 2017); the defaults are DenseNet-121's numbers.

    torchvision's configurations build with its argument names, e.g. `growth_rate=16,
    block_config=(6, 12, 24, 16), num_init_features=16, bn_size=4, drop_rate=0`. With the
    defaults the graph is `densenet121`'s (layer names included), but `weights="imagenet"`
    is refused here: the official files belong to `densenet121/169/201`. Needs input
    sides >= 2 ** (blocks + 1) (32 for four blocks).
    """
    config = check_config(growth_rate, block_config, num_init_features, bn_size, compression,
                          drop_rate)
    return build("densenet", config, locals())


def _variant(variant: str, args: dict) -> keras.Model:
    check_config(**dataclasses.asdict(CONFIGS[variant]), drop_rate=args["drop_rate"])
    return build(variant, CONFIGS[variant], args)


@register(**_COMMON, twin="densenet.DenseNet121",
          imagenet=_keras_files("densenet121", "9d60b8095a5708f2dcce2bca79d332c7",
                                "30ee3e1110167f948a6b9946edeeb738"),
          params=ParamCounts(8_062_504, 7_978_856, f"{_KA} DenseNet121"),
          accuracy=(PublishedAccuracy(74.4, "torchvision", _TV_ACC, 224),
                    PublishedAccuracy(74.75, "timm densenet121.tv_in1k", "timm results-imagenet.csv",
                                      224)))
@heads.contract_docstring(DROP_RATE_DOC)
def densenet121(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_rate=0.0) -> keras.Model:
    """DenseNet-121 (Huang et al., 2017), graph- and weight-compatible with keras.applications.

    k=32, blocks (6, 12, 24, 16), 64 stem channels, compression 0.5, bottleneck 4k: the
    paper's DenseNet-BC. Same layer names as `keras.applications.DenseNet121`
    (`conv2_block1_0_bn`, `pool2_conv`, ...), so `weights="imagenet"` loads its file.
    BatchNorm epsilon 1.001e-5 as there; torchvision's mean/std normalization in the graph.
    """
    return _variant("densenet121", locals())


@register(**_COMMON, twin="densenet.DenseNet169",
          imagenet=_keras_files("densenet169", "d699b8f76981ab1b30698df4c175e90b",
                                "b8c4d4c20dd625c148057b9ff1c1176b"),
          params=ParamCounts(14_307_880, 14_149_480, f"{_KA} DenseNet169"),
          accuracy=(PublishedAccuracy(75.6, "torchvision", _TV_ACC, 224),))
@heads.contract_docstring(DROP_RATE_DOC)
def densenet169(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_rate=0.0) -> keras.Model:
    """DenseNet-169 (Huang et al., 2017): blocks (6, 12, 32, 32); see `densenet121`."""
    return _variant("densenet169", locals())


@register(**_COMMON, twin="densenet.DenseNet201",
          imagenet=_keras_files("densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                                "c13680b51ded0fb44dff2d8f86ac8bb1"),
          params=ParamCounts(20_242_984, 20_013_928, f"{_KA} DenseNet201"),
          accuracy=(PublishedAccuracy(76.9, "torchvision", _TV_ACC, 224),))
@heads.contract_docstring(DROP_RATE_DOC)
def densenet201(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_rate=0.0) -> keras.Model:
    """DenseNet-201 (Huang et al., 2017): blocks (6, 12, 48, 32); see `densenet121`."""
    return _variant("densenet201", locals())


@register(**_COMMON, params=ParamCounts(
    33_736_232, 33_337_704,
    "kerasarch build of the paper's Table 1 row, equal to the closed-form count in "
    "tests/test_densenet.py; no reference library ships this configuration",
))
@heads.contract_docstring(DROP_RATE_DOC)
def densenet264(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_rate=0.0) -> keras.Model:
    """DenseNet-264 (Huang et al., 2017): k=32, blocks (6, 12, 64, 48); no published weights.

    The paper's configuration, built as `densenet121` is: 33,337,704 trainable parameters
    (33,736,232 with BatchNorm's moving statistics). Survey tables that print ~72.7M for
    "DenseNet-264" quote timm's `densenet264d` (72,736,216): a different network with
    growth rate 48 instead of 32 (so 96 stem channels) and a "deep" stem of three 3x3
    convolutions instead of one 7x7. That figure is not the paper's DenseNet-264.
    """
    return _variant("densenet264", locals())
