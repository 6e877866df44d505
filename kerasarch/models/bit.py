"""BiT (Kolesnikov et al., 2019): pre-activation ResNets with GroupNorm and Weight Standardization.

Big Transfer's ResNet-v2 "R" models, each width multiplied by 1 to 4:

    bit_r50x1 / x3     3  4  6  3
    bit_r101x1 / x3    3  4 23  3
    bit_r152x2 / x4    3  8 36  3

Every BatchNorm of the pre-activation ResNet is a GroupNorm (32 groups) and every
convolution is weight-standardized, so nothing depends on the batch: BiT fine-tunes at any
batch size, even 1. The stage machinery is ResNet's (`kerasarch.models.resnet.build`);
this module adds BiT's block, layout and recipe.
"""

from __future__ import annotations

import re

import keras

from kerasarch import blocks, heads
from kerasarch.models.resnet import DROP_PATH_DOC, Layout, ResNetConfig, build, conv, norm
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights_timm import TimmNames, register_names

# GroupNorm(32) with PyTorch's and BiT's epsilon 1e-5 (Keras' GroupNormalization defaults
# to 1e-3, which would shift every activation of the published weights), weight-
# standardized convolutions without biases (StandardizedConv2D states its epsilon).
BIT = Layout(
    conv_bias=False, norm_epsilon=1e-5, bn_momentum=0.0, stride_on_3x3=True,
    norm="group", weight_standardization=True,
)

RECIPE = Recipe(
    "sgd", 0.003, 512, schedule="step", step_fraction=0.3, warmup_fraction=0.05,
    source="Kolesnikov et al. 2019, BiT-HyperRule (fine-tuning): SGD momentum 0.9, lr "
    "0.003 at batch 512, linear warmup, /10 at 30%, 60%, 90% of the run, no weight decay",
)


def bit_block(x, filters: int, stride: int, first: bool, name: str, config: ResNetConfig,
              drop_rate: float = 0.0):
    """BiT's pre-activation bottleneck: GroupNorm-ReLU before each standardized convolution.

    Unlike keras.applications' v2, BiT downsamples in the *first* block of a stage (the
    paper's placement), with the stride on the 3x3 convolution, and projects the shortcut
    from the pre-activated input whenever the shape changes.
    """
    layout = config.layout
    preact = norm(x, f"{name}_preact_gn", layout)
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    shortcut = x
    if first:
        shortcut = conv(preact, 4 * filters, 1, f"{name}_0_conv", layout, strides=stride)
    x = conv(preact, filters, 1, f"{name}_1_conv", layout)
    x = norm(x, f"{name}_1_gn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = conv(x, filters, 3, f"{name}_2_conv", layout, strides=stride)
    x = norm(x, f"{name}_2_gn", layout)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = conv(x, 4 * filters, 1, f"{name}_3_conv", layout)
    return blocks.residual(shortcut, x, name, drop_rate, f"{name}_out")


def _config(depths: tuple[int, int, int, int], width: int) -> ResNetConfig:
    return ResNetConfig(bit_block, depths, BIT, width_multiplier=width, post_norm="post_gn")


CONFIGS = {
    "bit_r50x1": _config((3, 4, 6, 3), 1),
    "bit_r50x3": _config((3, 4, 6, 3), 3),
    "bit_r101x1": _config((3, 4, 23, 3), 1),
    "bit_r101x3": _config((3, 4, 23, 3), 3),
    "bit_r152x2": _config((3, 8, 36, 3), 2),
    "bit_r152x4": _config((3, 8, 36, 3), 4),
}

# timm's `resnetv2_*_bit` names: stem, final norm, head (a 1x1 convolution there) ...
TIMM_FIXED = {"conv1_conv": "stem.conv", "post_gn": "norm", "predictions": "head.fc"}
# ... and inside block `conv{S}_block{B}` (timm's `stages.{S-2}.blocks.{B-1}`):
TIMM_BLOCK = {
    "preact_gn": "norm1", "0_conv": "downsample.conv", "1_conv": "conv1", "1_gn": "norm2",
    "2_conv": "conv2", "2_gn": "norm3", "3_conv": "conv3",
}
_TIMM_LAYER = re.compile(r"conv(\d)_block(\d+)_(\w+)")


def timm_module(layer: str) -> str | None:
    """The timm module of a BiT layer (`TIMM_FIXED`, `TIMM_BLOCK`)."""
    match = _TIMM_LAYER.fullmatch(layer)
    if match is None:
        return TIMM_FIXED.get(layer)
    part = TIMM_BLOCK.get(match[3])
    return None if part is None else f"stages.{int(match[1]) - 2}.blocks.{int(match[2]) - 1}.{part}"


register_names(TimmNames(timm_module, head="head.fc", normalization="tf", architectures={
    name: f"resnetv2_{name.removeprefix('bit_r')}_bit" for name in CONFIGS
}))

# Big Transfer's official .npz checkpoints (`BiT-M-R50x1.npz`, TensorFlow names and layouts;
# google-research/big_transfer): the stem, final norm and head (a 1x1 convolution) ...
NPZ_FIXED = {
    "conv1_conv": "resnet/root_block/standardized_conv2d", "post_gn": "resnet/group_norm",
    "predictions": "resnet/head/conv2d",
}
# ... and inside block `conv{S}_block{B}` (`resnet/block{S-1}/unit{B:02d}`): unit a's
# GroupNorm is the pre-activation, b's and c's precede the 3x3 and the last 1x1 convolution.
NPZ_BLOCK = {
    "preact_gn": "a/group_norm", "0_conv": "a/proj/standardized_conv2d",
    "1_conv": "a/standardized_conv2d", "1_gn": "b/group_norm",
    "2_conv": "b/standardized_conv2d", "2_gn": "c/group_norm", "3_conv": "c/standardized_conv2d",
}


def npz_module(layer: str) -> str | None:
    """The `.npz` name prefix of a BiT layer (`NPZ_FIXED`, `NPZ_BLOCK`)."""
    match = _TIMM_LAYER.fullmatch(layer)
    if match is None:
        return NPZ_FIXED.get(layer)
    part = NPZ_BLOCK.get(match[3])
    return None if part is None else f"resnet/block{int(match[1]) - 1}/unit{int(match[2]):02d}/{part}"


register_names(TimmNames(npz_module, head="resnet/head/conv2d", normalization="tf", layout="tf",
                         architectures={name: f"BiT-R{name.removeprefix('bit_r')} .npz"
                                        for name in CONFIGS}), npz=True)

_COMMON = dict(
    paper="Big Transfer (BiT): General Visual Representation Learning (Kolesnikov et al.)",
    year=2019, preprocessing="tf", input_shape=(224, 224, 3), min_size=32, recipe=RECIPE,
)
_TIMM = "timm 1.0 resnetv2_{}_bit (trainable; GroupNorm has no moving statistics)"


@register(**_COMMON, params=ParamCounts(25_549_352, 25_549_352, _TIMM.format("50x1")),
          accuracy=(
              PublishedAccuracy(80.39, "timm resnetv2_50x1_bit.goog_in21k_ft_in1k",
                                "timm results-imagenet.csv", 448),
              PublishedAccuracy(82.82, "timm resnetv2_50x1_bit.goog_distilled_in1k",
                                "timm results-imagenet.csv", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def bit_r50x1(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, augmentation=None,
              name=None, drop_path_rate=0.0) -> keras.Model:
    """BiT-R50x1 (Kolesnikov et al., 2019): ResNet-50 v2 with GroupNorm and Weight Standardization.

    Every BatchNorm of the pre-activation ResNet is a GroupNorm (32 groups, epsilon 1e-5)
    and every convolution is weight-standardized (`kerasarch.layers.StandardizedConv2D`),
    so nothing depends on the batch: BiT fine-tunes at any batch size, even 1. Unlike
    `resnet50v2` (keras.applications' layout), each stage downsamples in its first block,
    as in the paper and BiT's code, and the shortcut projection reads the pre-activated
    input. Inputs scaled to [-1, 1]. 25,549,352 parameters, as timm counts them.
    """
    return build("bit_r50x1", CONFIGS["bit_r50x1"], locals())


@register(**_COMMON, params=ParamCounts(217_319_080, 217_319_080, _TIMM.format("50x3")))
@heads.contract_docstring(DROP_PATH_DOC)
def bit_r50x3(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, augmentation=None,
              name=None, drop_path_rate=0.0) -> keras.Model:
    """BiT-R50x3: ResNet-50 v2 with every width x3; see `bit_r50x1` (217,319,080 parameters)."""
    return build("bit_r50x3", CONFIGS["bit_r50x3"], locals())


@register(**_COMMON, params=ParamCounts(44_541_480, 44_541_480, _TIMM.format("101x1")))
@heads.contract_docstring(DROP_PATH_DOC)
def bit_r101x1(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
               classifier_activation="softmax", include_preprocessing=True, augmentation=None,
               name=None, drop_path_rate=0.0) -> keras.Model:
    """BiT-R101x1: ResNet-101 v2 with every width x1; see `bit_r50x1` (44,541,480 parameters)."""
    return build("bit_r101x1", CONFIGS["bit_r101x1"], locals())


@register(**_COMMON, params=ParamCounts(387_934_888, 387_934_888, _TIMM.format("101x3")))
@heads.contract_docstring(DROP_PATH_DOC)
def bit_r101x3(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
               classifier_activation="softmax", include_preprocessing=True, augmentation=None,
               name=None, drop_path_rate=0.0) -> keras.Model:
    """BiT-R101x3: ResNet-101 v2 with every width x3; see `bit_r50x1` (387,934,888 parameters)."""
    return build("bit_r101x3", CONFIGS["bit_r101x3"], locals())


@register(**_COMMON, params=ParamCounts(236_335_208, 236_335_208, _TIMM.format("152x2")))
@heads.contract_docstring(DROP_PATH_DOC)
def bit_r152x2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
               classifier_activation="softmax", include_preprocessing=True, augmentation=None,
               name=None, drop_path_rate=0.0) -> keras.Model:
    """BiT-R152x2: ResNet-152 v2 with every width x2; see `bit_r50x1` (236,335,208 parameters)."""
    return build("bit_r152x2", CONFIGS["bit_r152x2"], locals())


@register(**_COMMON, params=ParamCounts(936_533_224, 936_533_224, _TIMM.format("152x4")),
          accuracy=(PublishedAccuracy(87.5, "BiT-L (JFT-300M), fine-tuned",
                                      "Kolesnikov et al. 2020 (BiT paper), BiT-L ImageNet top-1"),))
@heads.contract_docstring(DROP_PATH_DOC)
def bit_r152x4(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
               classifier_activation="softmax", include_preprocessing=True, augmentation=None,
               name=None, drop_path_rate=0.0) -> keras.Model:
    """BiT-R152x4: ResNet-152 v2 with every width x4; see `bit_r50x1` (936,533,224 parameters)."""
    return build("bit_r152x4", CONFIGS["bit_r152x4"], locals())
