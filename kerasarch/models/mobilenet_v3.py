"""MobileNet v3 (Howard et al., 2019): v2's blocks with squeeze-excitation and hard-swish, found by search.

The paper's Tables 1 (Large) and 2 (Small), one `BottleneckRow` per block: kernel,
expansion (expanded channels = input channels x expansion, rounded to a multiple of 8),
output channels, squeeze-excitation, hard-swish (else ReLU) and stride. `minimalistic`
is the paper's hardware-friendly variant (sec. 6.1.1 footnote, and the TF-slim code):
every 5x5 kernel becomes 3x3, hard-swish becomes ReLU, and squeeze-excitation goes.

Graph- and weight-compatible with keras.applications' `MobileNetV3Small` and
`MobileNetV3Large` (same layer names, shapes, padding, and the head of 1x1 convolutions
after pooling). The official files were written by Keras 2, whose layer names had slashes
(`expanded_conv_1/expand/BatchNorm`); Keras 3 forbids them, so keras 3's names are used
here and `keras2_name` maps a Keras-2 file onto them when one is loaded.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import re

import h5py
import keras

from kerasarch import blocks, heads
from kerasarch import weights as weights_lib
from kerasarch.models.mobilenet import V2_BN, check_alpha, conv_bn, conv_classifier, make_divisible
from kerasarch.registry import ParamCounts, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file


@dataclasses.dataclass(frozen=True)
class BottleneckRow:
    """One block of Table 1 or 2 (the expansion is the ratio keras' code writes)."""

    kernel: int
    expansion: float
    filters: int
    squeeze_excite: bool
    hard_swish: bool
    stride: int


@dataclasses.dataclass(frozen=True)
class MobileNetV3Config:
    """A v3 network: stem width, bottleneck rows and the width of the head's hidden 1x1 conv."""

    rows: tuple[BottleneckRow, ...]
    last_point_filters: int
    stem_filters: int = 16  # not scaled by alpha, as in keras and the TF-slim code


R = BottleneckRow
CONFIGS = {
    "mobilenet_v3_small": MobileNetV3Config(
        rows=(
            R(3, 1, 16, True, False, 2), R(3, 72 / 16, 24, False, False, 2),
            R(3, 88 / 24, 24, False, False, 1), R(5, 4, 40, True, True, 2),
            R(5, 6, 40, True, True, 1), R(5, 6, 40, True, True, 1),
            R(5, 3, 48, True, True, 1), R(5, 3, 48, True, True, 1),
            R(5, 6, 96, True, True, 2), R(5, 6, 96, True, True, 1), R(5, 6, 96, True, True, 1),
        ),
        last_point_filters=1024,
    ),
    "mobilenet_v3_large": MobileNetV3Config(
        rows=(
            R(3, 1, 16, False, False, 1), R(3, 4, 24, False, False, 2),
            R(3, 3, 24, False, False, 1), R(5, 3, 40, True, False, 2),
            R(5, 3, 40, True, False, 1), R(5, 3, 40, True, False, 1),
            R(3, 6, 80, False, True, 2), R(3, 2.5, 80, False, True, 1),
            R(3, 2.3, 80, False, True, 1), R(3, 2.3, 80, False, True, 1),
            R(3, 6, 112, True, True, 1), R(3, 6, 112, True, True, 1),
            R(5, 6, 160, True, True, 2), R(5, 6, 160, True, True, 1), R(5, 6, 160, True, True, 1),
        ),
        last_point_filters=1280,
    ),
}
del R

SE_RATIO = 0.25  # squeeze to a quarter of the expanded channels (rounded to a multiple of 8)


def minimalistic_row(row: BottleneckRow) -> BottleneckRow:
    """The minimalistic variant of a row: 3x3 kernels, ReLU, no squeeze-excitation."""
    return dataclasses.replace(row, kernel=3, squeeze_excite=False, hard_swish=False)


def squeeze_excite(x, filters: int, prefix: str):
    """Squeeze-excitation with a hard-sigmoid gate, under keras.applications' layer names."""
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(x)
    s = keras.layers.Conv2D(
        make_divisible(filters * SE_RATIO), 1, name=f"{prefix}squeeze_excite_conv"
    )(s)
    s = keras.layers.ReLU(name=f"{prefix}squeeze_excite_relu")(s)
    s = keras.layers.Conv2D(filters, 1, name=f"{prefix}squeeze_excite_conv_1")(s)
    # Keras 3's hard_sigmoid is relu6(x + 3) / 6, the paper's (Keras 2's was 0.2 x + 0.5).
    s = keras.layers.Activation("hard_sigmoid", name=f"{prefix}squeeze_excite_hard_sigmoid")(s)
    return keras.layers.Multiply(name=f"{prefix}squeeze_excite_mul")([x, s])


def bottleneck_block(x, row: BottleneckRow, filters: int, block: int):
    """v2's inverted residual block with an optional squeeze-excitation before the projection."""
    inputs, in_channels = x, x.shape[-1]
    activation = "hard_swish" if row.hard_swish else "relu"
    prefix = f"expanded_conv_{block}_" if block else "expanded_conv_"
    expanded = make_divisible(in_channels * row.expansion)
    if block:
        x = keras.layers.Conv2D(expanded, 1, use_bias=False, name=f"{prefix}expand")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}expand_bn", **V2_BN)(x)
        x = keras.layers.Activation(activation, name=f"{prefix}expand_{activation}")(x)
    x, padding = blocks.pad_for_conv(x, row.kernel, row.stride, "keras", f"{prefix}depthwise")
    x = keras.layers.DepthwiseConv2D(
        row.kernel, strides=row.stride, padding=padding, use_bias=False, name=f"{prefix}depthwise"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}depthwise_bn", **V2_BN)(x)
    x = keras.layers.Activation(activation, name=f"{prefix}depthwise_{activation}")(x)
    if row.squeeze_excite:
        x = squeeze_excite(x, expanded, prefix)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project")(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}project_bn", **V2_BN)(x)
    if row.stride == 1 and in_channels == filters:
        x = keras.layers.Add(name=f"{prefix}add")([inputs, x])
    return x


# --- the official files ------------------------------------------------------------------

_BASE = "mobilenet_v3/weights_mobilenet_v3_"
# keras.applications' WEIGHTS_HASHES (MD5 of the top and no-top files).
_HASHES = {
    "large_224_0.75_float": ("765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0_float": ("59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0_float": (
        "675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75_float": ("cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0_float": ("8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0_float": (
        "99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4"),
}


def official_files(size: str, alpha: float, minimalistic: bool) -> ImageNetWeights | None:
    """keras.applications' files for a v3 `size` ("small"/"large"), width and variant, if published."""
    key = f"{size}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    if key not in _HASHES:
        return None
    top, notop = _HASHES[key]
    return ImageNetWeights(
        keras_applications_file(f"{_BASE}{key}.h5", top),
        keras_applications_file(f"{_BASE}{key}_no_top_v2.h5", notop),
    )


_KERAS2_NAMES = (
    (re.compile(r"conv(_1)?_bn"), lambda m: f"Conv{m[1] or ''}/BatchNorm"),
    (re.compile(r"conv(_[12])?"), lambda m: f"Conv{m[1] or ''}"),
    (re.compile(r"logits"), lambda m: "Logits"),
    (re.compile(r"(expanded_conv(?:_\d+)?)_(expand|depthwise|project)(_bn)?"),
     lambda m: f"{m[1]}/{m[2]}" + ("/BatchNorm" if m[3] else "")),
    (re.compile(r"(expanded_conv(?:_\d+)?)_squeeze_excite_conv(_1)?"),
     lambda m: f"{m[1]}/squeeze_excite/Conv{m[2] or ''}"),
)


def keras2_name(name: str) -> str:
    """The Keras 2 name (the official files') of a weighted layer: `conv_1_bn` -> `Conv_1/BatchNorm`."""
    for pattern, rename in _KERAS2_NAMES:
        match = pattern.fullmatch(name)
        if match:
            return rename(match)
    raise ValueError(f"No Keras 2 name known for MobileNetV3 layer {name!r}.")


def _keras2_file(path: str) -> bool:
    """Whether a legacy `.h5` file holds Keras 2's slash-separated layer names."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        names = group.attrs.get("layer_names", [])
        return any(b"/" in n if isinstance(n, bytes) else "/" in n for n in names)


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads a v3 weights file: Keras 3 names load as they are, Keras 2 names through `keras2_name`.

    A minimal addition kept in this family: `kerasarch.weights` applies one fixed layer
    map, but the official files (Keras 2 names) and files saved from keras.applications
    under Keras 3 (its own names) both exist.
    """
    path = os.fspath(path)
    layer_map = None
    if path.endswith((".h5", ".hdf5")) and not path.endswith(".weights.h5") and _keras2_file(path):
        layer_map = {keras2_name(layer.name): layer.name for layer in model.layers if layer.weights}
    weights_lib.load(model, path, layer_map=layer_map)


# --- the builders ------------------------------------------------------------------------


def _check(alpha, minimalistic, dropout_rate, weights, size: str) -> float:
    alpha = check_alpha(alpha)
    if not isinstance(minimalistic, bool):
        raise ValueError(f"Invalid value for argument `minimalistic`: {minimalistic!r}. Expected a bool.")
    if not isinstance(dropout_rate, numbers.Real) or not 0 <= dropout_rate < 1:
        raise ValueError(
            f"Invalid value for argument `dropout_rate`: {dropout_rate!r}. Expected a rate in [0, 1)."
        )
    if weights == "imagenet" and official_files(size, alpha, minimalistic) is None:
        raise ValueError(
            f"Invalid value for argument `alpha`: {alpha!r} with minimalistic={minimalistic} and "
            "weights='imagenet'. Published: alpha 0.75 or 1.0, or minimalistic with alpha 1.0."
        )
    return alpha


def _v3(size: str, alpha, minimalistic, dropout_rate, kwargs: dict) -> keras.Model:
    variant = f"mobilenet_v3_{size}"
    alpha = _check(alpha, minimalistic, dropout_rate, kwargs.get("weights"), size)
    config = CONFIGS[variant]
    spec = heads.resolve(variant, kwargs)
    inputs, x = heads.image_input(spec)
    act = "relu" if minimalistic else "hard_swish"
    x = conv_bn(x, config.stem_filters, 3, 2, "conv", "conv_bn", V2_BN)
    x = keras.layers.Activation(act, name=f"conv_{act}")(x)
    for block, row in enumerate(config.rows):
        row = minimalistic_row(row) if minimalistic else row
        x = bottleneck_block(x, row, make_divisible(row.filters * alpha), block)
    x = keras.layers.Conv2D(make_divisible(x.shape[-1] * 6), 1, use_bias=False, name="conv_1")(x)
    x = keras.layers.BatchNormalization(name="conv_1_bn", **V2_BN)(x)
    x = keras.layers.Activation(act, name=f"conv_1_{act}")(x)
    if spec.include_top:
        last = config.last_point_filters
        last = make_divisible(last * alpha) if alpha > 1.0 else last
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = keras.layers.Conv2D(last, 1, name="conv_2")(x)
        x = keras.layers.Activation(act, name=f"conv_2_{act}")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        x = conv_classifier(spec, x, "logits", "flatten")
    else:
        x = heads.features(spec, x)
    model = heads.finish(dataclasses.replace(spec, weights=None), inputs, x)
    if spec.weights == "imagenet":
        files = official_files(size, alpha, minimalistic)
        path = weights_lib.fetch_file(files.file(spec.include_top), f"the ImageNet weights of {variant}")
        load_weights(model, path)
    elif spec.weights is not None:
        load_weights(model, spec.weights)
    return model


RECIPE = Recipe(
    "rmsprop", 0.1, 4096, schedule="step", step_epochs=3, step_factor=1 / 0.99, weight_decay=1e-5,
    source="Howard et al. 2019, sec. 6.1: RMSprop momentum 0.9, lr 0.1 at batch 4096, decayed "
    "every 3 epochs (the paper prints a decay rate of 0.01; read as x0.99), dropout 0.8 "
    "(keep probability), L2 weight decay 1e-5",
)

_COMMON = dict(
    paper="Searching for MobileNetV3 (Howard et al.)", year=2019, family="mobilenet",
    input_shape=(224, 224, 3), preprocessing="tf", min_size=32, recipe=RECIPE,
)
_KA = "keras.applications 3.15"

_ARGS = """\
alpha (float): Width multiplier of the blocks (channels rounded to multiples of 8); the
    stem keeps 16 channels. Published weights: 0.75 and 1.0 (1.0 for minimalistic).
minimalistic (bool): The hardware-friendly variant: 3x3 kernels, ReLU, no
    squeeze-excitation.
dropout_rate (float): Dropout before the logits (keras.applications' 0.2)."""



@register(**_COMMON, twin="mobilenet_v3.MobileNetV3Small", imagenet=official_files("small", 1.0, False),
          params=ParamCounts(2_554_968, 2_542_856, f"{_KA} MobileNetV3Small"))
@heads.contract_docstring(_ARGS)
def mobilenet_v3_small(*, include_top=True, weights=None, input_shape=None, pooling=None,
                       classes=1000, classifier_activation="softmax", include_preprocessing=True,
                       augmentation=None, name=None, alpha=1.0, minimalistic=False,
                       dropout_rate=0.2) -> keras.Model:
    """MobileNet v3 Small (Howard et al., 2019): eleven bottlenecks, SE and hard-swish.

    Graph- and weight-compatible with `keras.applications.MobileNetV3Small`:
    `weights="imagenet"` loads the file of the chosen `alpha` and `minimalistic` (its
    Keras 2 layer names mapped by `keras2_name`). As keras: the head is global pooling, a
    1x1 convolution with bias (1024 channels), hard-swish, dropout and 1x1-convolution
    logits; the stem and the strided depthwise convolutions pad as TF "same"
    (`blocks.keras_pad`); BatchNorm epsilon 1e-3, momentum 0.999. Inputs scaled to
    [-1, 1] (keras' `Rescaling(1/127.5, offset=-1)`, here the "tf" normalization); any
    size >= 32.
    """
    args = heads.contract_args(locals())
    return _v3("small", alpha, minimalistic, dropout_rate, args)


@register(**_COMMON, twin="mobilenet_v3.MobileNetV3Large", imagenet=official_files("large", 1.0, False),
          params=ParamCounts(5_507_432, 5_483_032, f"{_KA} MobileNetV3Large"))
@heads.contract_docstring(_ARGS)
def mobilenet_v3_large(*, include_top=True, weights=None, input_shape=None, pooling=None,
                       classes=1000, classifier_activation="softmax", include_preprocessing=True,
                       augmentation=None, name=None, alpha=1.0, minimalistic=False,
                       dropout_rate=0.2) -> keras.Model:
    """MobileNet v3 Large (Howard et al., 2019): fifteen bottlenecks, SE and hard-swish.

    Graph- and weight-compatible with `keras.applications.MobileNetV3Large`; the head's
    hidden 1x1 convolution has 1280 channels. Otherwise as `mobilenet_v3_small`.
    """
    args = heads.contract_args(locals())
    return _v3("large", alpha, minimalistic, dropout_rate, args)


