"""ResNet in the torchvision / timm layout: the "v1.5" ResNet-50/101/152 and timm's names.

Every PyTorch ResNet checkpoint (torchvision, timm, NVIDIA's "ResNet v1.5") uses the
`TORCHVISION` layout of `kerasarch.models.resnet`: no convolution biases, and the stride of a
downsampling bottleneck on its 3x3 convolution. ResNet-18/34 and Wide ResNet are built that
way already; ResNet-50/101/152 exist twice, `resnet50` in keras.applications' original
layout (its weights) and `resnet50_tv` here (timm's and torchvision's weights). The table
below names each kerasarch layer in timm's state dicts, for `weights="hf://timm/..."`.
These builders are part of the `resnet` family (its docs page and stage table).
"""

from __future__ import annotations

import re

import keras

from kerasarch import heads
from kerasarch.models.resnet import _COMMON, _TV, _V1, CONFIGS, DROP_PATH_DOC, build
from kerasarch.registry import ParamCounts, PublishedAccuracy, register
from kerasarch.weights_timm import TimmNames, register_names

# timm's (and torchvision's) names for the torchvision-layout ResNets: the stem and head ...
TIMM_FIXED = {"conv1_conv": "conv1", "conv1_bn": "bn1", "predictions": "fc"}
# ... and, inside block `conv{S}_block{B}` (timm's `layer{S-1}.{B-1}`), each layer's module.
TIMM_BLOCK = {
    "0_conv": "downsample.0", "0_bn": "downsample.1",
    "1_conv": "conv1", "1_bn": "bn1", "2_conv": "conv2", "2_bn": "bn2", "3_conv": "conv3", "3_bn": "bn3",
}
_BLOCK_LAYER = re.compile(r"conv(\d)_block(\d+)_(\d_(?:conv|bn))")


def timm_module(layer: str) -> str | None:
    """The timm module of a torchvision-layout ResNet layer (`TIMM_FIXED`, `TIMM_BLOCK`)."""
    if layer in TIMM_FIXED:
        return TIMM_FIXED[layer]
    match = _BLOCK_LAYER.fullmatch(layer)
    if match is None or match[3] not in TIMM_BLOCK:
        return None
    return f"layer{int(match[1]) - 1}.{int(match[2]) - 1}.{TIMM_BLOCK[match[3]]}"


TIMM_NAMES = TimmNames(
    timm_module, head="fc",
    architectures={
        **{name: name for name in ("resnet18", "resnet34", "wide_resnet50_2", "wide_resnet101_2")},
        **{f"resnet{depth}_tv": f"resnet{depth}" for depth in (50, 101, 152)},
    },
)
register_names(TIMM_NAMES)


@register(paper=_V1, year=2015, preprocessing="torch", family="resnet", **_COMMON,
          params=ParamCounts(25_610_152, 25_557_032, _TV),
          accuracy=(
              PublishedAccuracy(76.130, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(80.858, "torchvision V2", "torchvision 0.29 meta", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet50_tv(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-50 v1.5, the torchvision / timm layout (25,557,032 trainable parameters).

    The layout of every PyTorch ResNet-50 checkpoint (torchvision, timm, NVIDIA's "v1.5"):
    a downsampling bottleneck strides on its 3x3 convolution instead of its first 1x1 (a
    little more accurate for a little more compute), and no convolution has a bias.
    [0, 1], then ImageNet mean / std. Loads timm weights (`weights="hf://timm/resnet50.<tag>"`
    or a `.safetensors` file). `resnet50` is the original layout keras.applications' weights need.
    """
    return build("resnet50_tv", CONFIGS["resnet50_tv"], locals())


@register(paper=_V1, year=2015, preprocessing="torch", family="resnet", **_COMMON,
          params=ParamCounts(44_654_504, 44_549_160, _TV),
          accuracy=(
              PublishedAccuracy(77.374, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(81.886, "torchvision V2", "torchvision 0.29 meta", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet101_tv(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                 name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-101 v1.5, torchvision / timm layout (44,549,160 trainable); see `resnet50_tv`."""
    return build("resnet101_tv", CONFIGS["resnet101_tv"], locals())


@register(paper=_V1, year=2015, preprocessing="torch", family="resnet", **_COMMON,
          params=ParamCounts(60_344_232, 60_192_808, _TV),
          accuracy=(
              PublishedAccuracy(78.312, "torchvision V1", "torchvision 0.29 meta", 224),
              PublishedAccuracy(82.284, "torchvision V2", "torchvision 0.29 meta", 224),
          ))
@heads.contract_docstring(DROP_PATH_DOC)
def resnet152_tv(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                 name=None, drop_path_rate=0.0) -> keras.Model:
    """ResNet-152 v1.5, torchvision / timm layout (60,192,808 trainable); see `resnet50_tv`."""
    return build("resnet152_tv", CONFIGS["resnet152_tv"], locals())
