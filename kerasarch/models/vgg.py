"""VGG (Simonyan and Zisserman, 2014): stacks of 3x3 convolutions, five max-pooled stages.

The paper's Table 1, configurations A, B, D, E: convolutions per stage (widths 64, 128,
256, 512, 512), then fc 4096, fc 4096, and the classifier.

    vgg11 (A)  1 1 2 2 2
    vgg13 (B)  2 2 2 2 2
    vgg16 (D)  2 2 3 3 3
    vgg19 (E)  2 2 4 4 4

The head takes any input size >= 32: an adaptive average pooling brings the last feature
map to the native 7x7 grid before `flatten` (as torchvision's VGG does), so fc1 always has
25088 inputs. keras.applications flattens the real map instead, which makes fc1's shape
depend on the input size. The pooling was chosen because it keeps both uses of pretrained
weights: at 224 the map is already 7x7 and the pooling passes it through (it holds no
weights, and official files load by layer name), so the official Keras files load and
predict exactly as keras.applications does; at other sizes the same fc weights still fit,
for fine-tuning the whole head at 128-160 px. Smaller maps are averaged or repeated up to
7x7 (a 1x1 map from a 32x32 input is repeated), as torchvision does.
"""

from __future__ import annotations

import dataclasses

import keras

from kerasarch import heads
from kerasarch import layers as ka_layers
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file
from kerasarch.weights_timm import TimmNames, register_names


@dataclasses.dataclass(frozen=True)
class VGGConfig:
    """One column of the paper's Table 1."""

    convs_per_stage: tuple[int, int, int, int, int]
    widths: tuple[int, int, int, int, int] = (64, 128, 256, 512, 512)


CONFIGS = {
    "vgg11": VGGConfig(convs_per_stage=(1, 1, 2, 2, 2)),
    "vgg13": VGGConfig(convs_per_stage=(2, 2, 2, 2, 2)),
    "vgg16": VGGConfig(convs_per_stage=(2, 2, 3, 3, 3)),
    "vgg19": VGGConfig(convs_per_stage=(2, 2, 4, 4, 4)),
}

PAPER = "Very Deep Convolutional Networks for Large-Scale Image Recognition (Simonyan, Zisserman)"


def _conv(x, filters: int, name: str, batch_norm: bool):
    if not batch_norm:
        return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name=name)(x)
    # torchvision's vgg*_bn values (eps 1e-5, momentum 0.1 in PyTorch = 0.9 in Keras), so
    # weights ported from it behave the same; Keras' defaults are 1e-3 and 0.99.
    x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _stage(x, index: int, convs: int, filters: int, batch_norm: bool):
    for i in range(1, convs + 1):
        x = _conv(x, filters, f"block{index}_conv{i}", batch_norm)
    return keras.layers.MaxPooling2D(2, strides=2, name=f"block{index}_pool")(x)


def _vgg(variant: str, batch_norm: bool, kwargs: dict) -> keras.Model:
    config = CONFIGS[variant]
    spec = heads.resolve(f"{variant}_bn" if batch_norm else variant, kwargs)
    inputs, x = heads.image_input(spec)
    for index, (convs, width) in enumerate(
        zip(config.convs_per_stage, config.widths, strict=True), start=1
    ):
        x = _stage(x, index, convs, width, batch_norm)
    if spec.include_top:
        x = ka_layers.AdaptiveAveragePooling2D(7, name="avgpool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
        x = keras.layers.Dropout(0.5, name="fc1_dropout")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc2")(x)
        x = keras.layers.Dropout(0.5, name="fc2_dropout")(x)
        x = heads.predictions(spec, x)
    else:
        x = heads.features(spec, x)
    return heads.finish(spec, inputs, x)


RECIPE = Recipe(
    "sgd", 0.01, 256, schedule="step", step_epochs=25, weight_decay=5e-4, epochs=74,
    source="Simonyan and Zisserman 2015, sec. 3.1: batch 256, momentum 0.9, lr 0.01 /10 "
    "on plateaus (three times, 74 epochs), weight decay 5e-4, dropout 0.5",
)

_COMMON = dict(
    paper=PAPER, year=2014, input_shape=(224, 224, 3), min_size=32, recipe=RECIPE,
)
_TV = "torchvision 0.29 (trainable); total adds BatchNorm moving mean/variance"


# timm's names (torchvision's, with the classifier as timm's ConvMlp): the head modules ...
TIMM_HEAD = {"fc1": "pre_logits.fc1", "fc2": "pre_logits.fc2", "predictions": "head.fc"}


def timm_table(variant: str, batch_norm: bool) -> dict[str, str]:
    """... and `features.N`, numbered over the convolutions, norms, ReLUs and pools in order."""
    table, index = dict(TIMM_HEAD), 0
    for stage, convs in enumerate(CONFIGS[variant].convs_per_stage, start=1):
        for i in range(1, convs + 1):
            table[f"block{stage}_conv{i}"] = f"features.{index}"
            if batch_norm:
                table[f"block{stage}_conv{i}_bn"] = f"features.{index + 1}"
            index += 3 if batch_norm else 2  # conv, (bn,) relu
        index += 1  # the stage's max pool
    return table


for _variant in CONFIGS:
    for _bn in (False, True):
        _name = f"{_variant}_bn" if _bn else _variant
        register_names(TimmNames(
            timm_table(_variant, _bn).get, head="head.fc", architectures={_name: _name},
            pre_logits=("pre_logits.fc1", "pre_logits.fc2"),
        ))


def _keras_files(variant: str, top: str, notop: str) -> ImageNetWeights:
    """keras.applications' VGG files and their published MD5 digests."""
    stem = f"{variant}/{variant}_weights_tf_dim_ordering_tf_kernels"
    return ImageNetWeights(
        keras_applications_file(f"{stem}.h5", top), keras_applications_file(f"{stem}_notop.h5", notop)
    )


_BATCH_NORM_DOC = """\
batch_norm (bool): Add BatchNorm after every convolution (torchvision's `vgg*_bn`, no
    Keras ImageNet weights), which the paper lacks; it lets VGG train from scratch without
    staged initialization. `kerasarch.<variant>_bn` is the builder with it set."""


def _register(
    variant: str, plain: ParamCounts, bn: ParamCounts, imagenet: ImageNetWeights | None = None,
    accuracy: tuple[PublishedAccuracy, ...] = (), bn_accuracy: tuple[PublishedAccuracy, ...] = (),
):
    def decorator(builder):
        twin = f"{variant}.{variant.upper()}" if imagenet else None
        register(
            preprocessing="caffe", imagenet=imagenet, twin=twin, params=plain, accuracy=accuracy,
            **_COMMON,
        )(heads.contract_docstring(_BATCH_NORM_DOC)(builder))
        register(
            name=f"{variant}_bn", preset={"batch_norm": True}, preprocessing="torch",
            params=bn, accuracy=bn_accuracy, **_COMMON,
        )(builder)
        return builder

    return decorator


@_register(
    "vgg11",
    ParamCounts(132_863_336, 132_863_336, "torchvision 0.29 vgg11"),
    ParamCounts(132_874_344, 132_868_840, _TV),
    accuracy=(PublishedAccuracy(69.020, "torchvision V1", "torchvision 0.29 meta", 224),),
    bn_accuracy=(PublishedAccuracy(70.370, "torchvision V1", "torchvision 0.29 meta", 224),),
)
def vgg11(*, batch_norm=False, include_top=True, weights=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", include_preprocessing=True,
          augmentation=None, name=None) -> keras.Model:
    """VGG-11, configuration A (Simonyan and Zisserman, 2014).

    Input: 224x224x3 raw RGB in [0, 255] (any size >= 32, with or without the head). Normalization:
    caffe (BGR minus the ImageNet mean, as the Keras VGG weights expect), or torchvision's
    mean/std with `batch_norm=True`. The head has dropout 0.5 after fc1 and fc2, as in the
    paper (keras.applications omits it; it holds no weights and is inert at inference).
    """
    return _vgg("vgg11", batch_norm, heads.contract_args(locals()))


@_register(
    "vgg13",
    ParamCounts(133_047_848, 133_047_848, "torchvision 0.29 vgg13"),
    ParamCounts(133_059_624, 133_053_736, _TV),
    accuracy=(PublishedAccuracy(69.928, "torchvision V1", "torchvision 0.29 meta", 224),),
    bn_accuracy=(PublishedAccuracy(71.586, "torchvision V1", "torchvision 0.29 meta", 224),),
)
def vgg13(*, batch_norm=False, include_top=True, weights=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", include_preprocessing=True,
          augmentation=None, name=None) -> keras.Model:
    """VGG-13, configuration B (Simonyan and Zisserman, 2014).

    Same input, normalization and head as `vgg11`.
    """
    return _vgg("vgg13", batch_norm, heads.contract_args(locals()))


@_register(
    "vgg16",
    ParamCounts(138_357_544, 138_357_544, "keras.applications 3.15 VGG16"),
    ParamCounts(138_374_440, 138_365_992, _TV),
    _keras_files("vgg16", "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc"),
    accuracy=(
        PublishedAccuracy(71.592, "torchvision V1", "torchvision 0.29 meta", 224),
        PublishedAccuracy(71.3, "keras.applications", "keras.io applications table", 224),
    ),
    bn_accuracy=(PublishedAccuracy(73.360, "torchvision V1", "torchvision 0.29 meta", 224),),
)
def vgg16(*, batch_norm=False, include_top=True, weights=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", include_preprocessing=True,
          augmentation=None, name=None) -> keras.Model:
    """VGG-16, configuration D (Simonyan and Zisserman, 2014).

    Graph- and weight-compatible with `keras.applications.VGG16` (same layer names and
    shapes): `weights="imagenet"` loads its published file. Same input, normalization and
    head as `vgg11`.
    """
    return _vgg("vgg16", batch_norm, heads.contract_args(locals()))


@_register(
    "vgg19",
    ParamCounts(143_667_240, 143_667_240, "keras.applications 3.15 VGG19"),
    ParamCounts(143_689_256, 143_678_248, _TV),
    _keras_files("vgg19", "cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6"),
    accuracy=(
        PublishedAccuracy(72.376, "torchvision V1", "torchvision 0.29 meta", 224),
        PublishedAccuracy(71.3, "keras.applications", "keras.io applications table", 224),
    ),
    bn_accuracy=(PublishedAccuracy(74.218, "torchvision V1", "torchvision 0.29 meta", 224),),
)
def vgg19(*, batch_norm=False, include_top=True, weights=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", include_preprocessing=True,
          augmentation=None, name=None) -> keras.Model:
    """VGG-19, configuration E (Simonyan and Zisserman, 2014).

    Graph- and weight-compatible with `keras.applications.VGG19`; `weights="imagenet"`
    loads its published file. Same input, normalization and head as `vgg11`.
    """
    return _vgg("vgg19", batch_norm, heads.contract_args(locals()))
