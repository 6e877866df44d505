"""Inception v3 (Szegedy et al. 2015), and the Inception machinery Inception-ResNet v2 shares.

Inception v3's Table 1 as the TF-slim release (and keras.applications) builds it, 299x299 in:

    stem      3x3/2 32, 3x3 32, 3x3 64, maxpool 3/2, 1x1 80, 3x3 192, maxpool 3/2   -> 35x35
    mixed0-2  3 x module A (Figure 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1  -> 35x35
    mixed3    reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3/2                       -> 17x17
    mixed4-7  4 x module C (Figure 6): n x n factorized into 1 x n + n x 1, n = 7    -> 17x17
    mixed8    reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool 3/2               -> 8x8
    mixed9-10 2 x module E (Figure 7): 3x3 expanded into parallel 1x3 | 3x1        -> 8x8

Inception-ResNet v2 (`kerasarch.models.inception_resnet`) reuses the stem, the units and
the module machinery of this module.

Every convolution is a unit: Conv2D without bias, BatchNorm without scale (a ReLU follows,
so a scale would be redundant), ReLU. The branch widths are data (`Branch`, `Module`), the
module functions below read like the paper's figures, and the same tables give the layer
names, so the official files, whose layers keras left unnamed (`conv2d_7`), load through a
layer map generated from them (`keras_layer_map`).
"""

from __future__ import annotations

import dataclasses

import keras

from kerasarch import heads, weights_timm
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file
from kerasarch.weights_timm import TimmNames, register_names

# BatchNorm as keras.applications and TF-slim: epsilon 1e-3 (PyTorch's default is 1e-5; the
# files' statistics were computed for 1e-3) and no scale. Momentum is keras' 0.99 (slim
# trained with 0.9997; it does not matter at inference).
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
MIN_SIZE = 75  # keras.applications' minimum: the 8x8 grid is then 1x1
AUX_MIN_SIZE = 299  # the auxiliary head's 5x5/3 pooling and 5x5 convolution need 17x17


@dataclasses.dataclass(frozen=True)
class Conv:
    """One convolution unit (Conv2D, BatchNorm, ReLU).

    Strided convolutions are all "valid", so TF's asymmetric "same" padding at stride 2
    never occurs; stride-1 "same" pads odd kernels symmetrically.
    """

    filters: int
    kernel: int | tuple[int, int]
    strides: int = 1
    padding: str = "same"


@dataclasses.dataclass(frozen=True)
class Branch:
    """One branch of an inception module: an optional pooling, then convolution units.

    Attributes:
        name: Branch name in layer names (`branch7x7dbl` in `mixed5_branch7x7dbl_2_conv`).
        convs: The units, in order.
        pool: `"avg"` (3x3, stride 1, "same", padding excluded from the mean, as TF) or
            `"max"` (3x3, stride 2, "valid") before the units, or None.
        split: Units applied in parallel to the last output and concatenated (module E's
            1x3 | 3x1 expansion).
    """

    name: str
    convs: tuple[Conv, ...] = ()
    pool: str | None = None
    split: tuple[Conv, ...] = ()


@dataclasses.dataclass(frozen=True)
class Module:
    """An inception module: branches run on the same input, concatenated on channels."""

    name: str
    branches: tuple[Branch, ...]


# --- the modules, as in the papers' figures (widths as in keras.applications) ----------------


def module_a(name: str, pool_filters: int, filters_1x1: int = 64) -> Module:
    """35x35 module (v3 Figure 5). The release keeps a 5x5 branch beside the two 3x3s."""
    return Module(name, (
        Branch("branch1x1", (Conv(filters_1x1, 1),)),
        Branch("branch5x5", (Conv(48, 1), Conv(64, 5))),
        Branch("branch3x3dbl", (Conv(64, 1), Conv(96, 3), Conv(96, 3))),
        Branch("branch_pool", (Conv(pool_filters, 1),), pool="avg"),
    ))


def reduction_a(name: str, widths: tuple[int, int, int, int]) -> Module:
    """35x35 -> 17x17: a strided 3x3, a strided double 3x3 (widths[1:]), a max-pool."""
    return Module(name, (
        Branch("branch3x3", (Conv(widths[0], 3, strides=2, padding="valid"),)),
        Branch("branch3x3dbl", (Conv(widths[1], 1), Conv(widths[2], 3),
                                Conv(widths[3], 3, strides=2, padding="valid"))),
        Branch("branch_pool", pool="max"),
    ))


def module_c(name: str, c7: int) -> Module:
    """17x17 module (v3 Figure 6): every 7x7 factorized into 1x7 then 7x1 (width c7 inside)."""
    return Module(name, (
        Branch("branch1x1", (Conv(192, 1),)),
        Branch("branch7x7", (Conv(c7, 1), Conv(c7, (1, 7)), Conv(192, (7, 1)))),
        Branch("branch7x7dbl", (Conv(c7, 1), Conv(c7, (7, 1)), Conv(c7, (1, 7)), Conv(c7, (7, 1)),
                                Conv(192, (1, 7)))),
        Branch("branch_pool", (Conv(192, 1),), pool="avg"),
    ))


def reduction_b(name: str) -> Module:
    """17x17 -> 8x8 (v3's mixed8)."""
    return Module(name, (
        Branch("branch3x3", (Conv(192, 1), Conv(320, 3, strides=2, padding="valid"))),
        Branch("branch7x7x3", (Conv(192, 1), Conv(192, (1, 7)), Conv(192, (7, 1)),
                               Conv(192, 3, strides=2, padding="valid"))),
        Branch("branch_pool", pool="max"),
    ))


def module_e(name: str) -> Module:
    """8x8 module (v3 Figure 7): the 3x3s expanded into parallel 1x3 and 3x1."""
    expand = (Conv(384, (1, 3)), Conv(384, (3, 1)))
    return Module(name, (
        Branch("branch1x1", (Conv(320, 1),)),
        Branch("branch3x3", (Conv(384, 1),), split=expand),
        Branch("branch3x3dbl", (Conv(448, 1), Conv(384, 3)), split=expand),
        Branch("branch_pool", (Conv(192, 1),), pool="avg"),
    ))


# The stem both networks share (v3 Table 1's first rows); "pool" is a 3x3/2 max-pool.
STEM = (
    Conv(32, 3, strides=2, padding="valid"), Conv(32, 3, padding="valid"), Conv(64, 3), "pool",
    Conv(80, 1, padding="valid"), Conv(192, 3, padding="valid"), "pool",
)


# --- the stage tables ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InceptionV3Config:
    """Inception v3's stage table.

    Attributes:
        grid35_pool_filters: Pool-branch width of each 35x35 module (mixed0-2).
        grid17_widths: Inner width c7 of each 17x17 module (mixed4-7).
        grid8_modules: Number of 8x8 modules (mixed9-10).
        aux_after: The module the auxiliary classifier reads (the last 17x17 one).
    """

    grid35_pool_filters: tuple[int, ...] = (32, 64, 64)
    grid17_widths: tuple[int, ...] = (128, 160, 160, 192)
    grid8_modules: int = 2
    aux_after: str = "mixed7"

    def layout(self) -> tuple[Module, ...]:
        """The modules in order, named `mixed0`... as keras.applications names them."""
        grid35 = [module_a("", f) for f in self.grid35_pool_filters]
        grid17 = [module_c("", c7) for c7 in self.grid17_widths]
        grid8 = [module_e("") for _ in range(self.grid8_modules)]
        modules = [*grid35, reduction_a("", (384, 64, 96, 96)), *grid17, reduction_b(""), *grid8]
        return tuple(dataclasses.replace(m, name=f"mixed{i}") for i, m in enumerate(modules))


CONFIGS = {
    "inception_v3": InceptionV3Config(),
}


# --- names: one walk over the tables gives the build order and the official files' names ----


def _kernel_name(conv: Conv) -> str:
    kernel = (conv.kernel, conv.kernel) if isinstance(conv.kernel, int) else conv.kernel
    return f"{kernel[0]}x{kernel[1]}"


def branch_units(module: str, branch: Branch) -> list[tuple[str, Conv]]:
    """A branch's convolution units as (layer-name prefix, conv), in the order they are built."""
    prefix = f"{module}_{branch.name}"
    units = [(f"{prefix}_{i}", conv) for i, conv in enumerate(branch.convs, start=1)]
    return units + [(f"{prefix}_{_kernel_name(conv)}", conv) for conv in branch.split]


def unit_names(layout: tuple) -> list[str]:
    """The layer-name prefixes of every Conv-BN unit of a network, in build order.

    The order is keras.applications' (stem, then each module branch by branch), so the
    n-th prefix is what keras auto-named `conv2d_n` / `batch_normalization_n`.
    """
    names = [f"stem{i}" for i, _ in enumerate((c for c in STEM if c != "pool"), start=1)]
    for item in layout:
        module = getattr(item, "module", item)  # a residual block holds its module
        names += [name for branch in module.branches for name, _ in branch_units(module.name, branch)]
    return names


def keras_layer_map(layout: tuple, first: int = 1) -> dict[str, str]:
    """Official file layer name -> kerasarch layer name, for the auto-named units.

    keras.applications builds these units without names, so its files hold Keras' automatic
    names in creation order. The official files were written by Keras 2.0, whose counters
    started at 1 (`conv2d_1`); Keras 3 starts at the bare name (`first=0`: `conv2d`,
    `conv2d_1`, ...). Layers keras names itself (`predictions`, `block35_1_conv`,
    `conv_7b`) carry the same names here and need no entry.

    Args:
        layout: The network's modules (`CONFIGS[name].layout()`).
        first: The number of the first automatic name.

    Returns:
        The map, two entries (convolution, BatchNorm) per unit.
    """
    mapping = {}
    for number, unit in enumerate(unit_names(layout), start=first):
        suffix = f"_{number}" if number else ""
        mapping[f"conv2d{suffix}"] = f"{unit}_conv"
        mapping[f"batch_normalization{suffix}"] = f"{unit}_bn"
    return mapping


# --- blocks ---------------------------------------------------------------------------------


def conv_unit(x, conv: Conv, name: str, source: str = "keras"):
    """Conv2D (no bias), BatchNorm (no scale), ReLU: `{name}_conv`, `{name}_bn`, `{name}_relu`.

    With `source="torch"` (timm's and torchvision's layout) the BatchNorm has a scale.
    """
    x = keras.layers.Conv2D(conv.filters, conv.kernel, strides=conv.strides, padding=conv.padding,
                            use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(scale=source == "torch", epsilon=BN_EPSILON,
                                        momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def inception_branch(x, module: str, branch: Branch, source: str = "keras"):
    """One branch: its pooling, its units, and its parallel split concatenated.

    `source="torch"`: the average pooling counts its zero padding in the mean (PyTorch's
    `count_include_pad=True`), as timm's and torchvision's weights were trained.
    """
    prefix = f"{module}_{branch.name}"
    if branch.pool == "avg" and source == "torch":
        x = keras.layers.ZeroPadding2D(1, name=f"{prefix}_pad")(x)
        x = keras.layers.AveragePooling2D(3, strides=1, name=prefix)(x)
    elif branch.pool == "avg":
        x = keras.layers.AveragePooling2D(3, strides=1, padding="same", name=prefix)(x)
    elif branch.pool == "max":
        x = keras.layers.MaxPooling2D(3, strides=2, name=prefix)(x)
    units = branch_units(module, branch)
    for name, conv in units[:len(branch.convs)]:
        x = conv_unit(x, conv, name, source)
    if branch.split:
        parts = [conv_unit(x, conv, name, source) for name, conv in units[len(branch.convs):]]
        x = keras.layers.Concatenate(name=f"{prefix}_concat")(parts)
    return x


def inception_module(x, module: Module, output_name: str | None = None, source: str = "keras"):
    """The module's branches concatenated on channels, named `output_name` or the module's name."""
    outputs = [inception_branch(x, module.name, branch, source) for branch in module.branches]
    return keras.layers.Concatenate(name=output_name or module.name)(outputs)


def stem(x, source: str = "keras"):
    """The shared stem: 299x299 -> 35x35x192."""
    units = pools = 0
    for item in STEM:
        if item == "pool":
            pools += 1
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"stem_pool{pools}")(x)
        else:
            units += 1
            x = conv_unit(x, item, f"stem{units}", source)
    return x


def aux_head(spec: heads.ModelSpec, x):
    """The auxiliary classifier on the last 17x17 module (v3 sec. 4), with BatchNorm.

    5x5/3 average pooling, a 1x1 unit to 128, a 5x5 "valid" unit to 768 (1x1 at 299), global
    average pooling (larger inputs give larger maps), and `aux_predictions`. The paper found
    the head regularizes rather than speeds up training, and best with BatchNorm in it.
    """
    x = keras.layers.AveragePooling2D(5, strides=3, name="aux_pool")(x)
    x = conv_unit(x, Conv(128, 1), "aux1")
    x = conv_unit(x, Conv(768, 5, padding="valid"), "aux2")
    x = keras.layers.GlobalAveragePooling2D(name="aux_avg_pool")(x)
    return keras.layers.Dense(spec.classes, activation=spec.classifier_activation, dtype="float32",
                              name="aux_predictions")(x)


def _check_aux(spec: heads.ModelSpec, aux_logits) -> None:
    if not isinstance(aux_logits, bool):
        raise ValueError(f"Invalid value for argument `aux_logits`: {aux_logits!r}. Expected True or False.")
    if aux_logits and not spec.include_top:
        raise ValueError(
            "Invalid value for argument `aux_logits`: True. The auxiliary classifier is a head: "
            "it needs include_top=True."
        )
    if aux_logits and any(d is not None and d < AUX_MIN_SIZE for d in spec.input_shape[:2]):
        raise ValueError(
            f"Invalid value for argument `input_shape`: {spec.input_shape}. With aux_logits=True, "
            f"height and width must be >= {AUX_MIN_SIZE} (the auxiliary head reads a 17x17 map)."
        )


_V3 = "Rethinking the Inception Architecture for Computer Vision (Szegedy et al.)"
_KA = "keras.applications 3.15"
_TIMM = "timm results-imagenet.csv"

# The papers' RMSProp (decay 0.9, epsilon 1.0: the trainer's "rmsprop"), lr 0.045 multiplied
# by 0.94 every two epochs: a step schedule whose divisor is 1 / 0.94. Not expressible in a
# Recipe: v3's gradient clipping at 2.0.
RECIPE_V3 = Recipe(
    "rmsprop", 0.045, 32, schedule="step", step_epochs=2, step_factor=1 / 0.94,
    label_smoothing=0.1, epochs=100,
    source="Szegedy et al. 2015, sec. 8 and 7: RMSProp decay 0.9, epsilon 1.0, lr 0.045 x0.94 "
    "every 2 epochs, batch 32 per replica (50 asynchronous replicas), 100 epochs, label smoothing "
    "0.1; the gradient clipping at 2.0 is not applied",
)


def keras_files(stem_path: str, top: str, notop: str, layout) -> ImageNetWeights:
    """keras.applications' files (MD5 as published in its source), with the generated layer map."""
    return ImageNetWeights(
        keras_applications_file(f"{stem_path}.h5", top),
        keras_applications_file(f"{stem_path}_notop.h5", notop),
        layer_map=keras_layer_map(layout),
    )


_AUX_DOC = """\
aux_logits (bool): Add the auxiliary classifier on the last 17x17 module; the model then
    returns `[predictions, aux_predictions]` (train with a weighted sum of both losses;
    serve the first). Needs `include_top=True` and inputs of at least 299x299. The
    official files hold no auxiliary head: it starts from random weights."""
_LAYOUT_DOC = """\
layout (str): The weights' source: `"keras"` (keras.applications' file: BatchNorm without
    scale, average pools that leave the padding out of the mean) or `"torch"` (timm's and
    torchvision's: BatchNorm with scale, pools counting the zero padding), which
    `weights="hf://timm/inception_v3.tv_in1k"` needs."""
_TORCH_LAYOUT = "BatchNorm with scale, average pools counting their padding"

# timm's names (`inception_v3`, torchvision's too) for layout="torch": the stem ...
TIMM_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
# ... and the modules mixed0..mixed10, in order.
TIMM_MODULES = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


def timm_units(config: InceptionV3Config) -> dict[str, str]:
    """Kerasarch unit prefix -> timm module, from the stage table.

    Within a module, timm numbers a branch's units from 1 (`branch7x7dbl_3`) unless the
    branch is one unit (`branch1x1`, `branch_pool`), and names a split `_{n + 1}a`/`b`
    (`branch3x3dbl_3a` for the 1x3, `_3b` for the 3x1).
    """
    table = {f"stem{i}": name for i, name in enumerate(TIMM_STEM, start=1)}
    for module, timm_name in zip(config.layout(), TIMM_MODULES, strict=True):
        for branch in module.branches:
            units = branch_units(module.name, branch)
            single = len(branch.convs) == 1 and not branch.split
            for i, (unit, _) in enumerate(units[:len(branch.convs)], start=1):
                table[unit] = f"{timm_name}.{branch.name}" + ("" if single else f"_{i}")
            for letter, (unit, _) in zip("ab", units[len(branch.convs):], strict=False):
                table[unit] = f"{timm_name}.{branch.name}_{len(branch.convs) + 1}{letter}"
    return table


TIMM_UNITS = timm_units(CONFIGS["inception_v3"])


def timm_module(layer: str) -> str | None:
    """The timm module of an `inception_v3` layer (`TIMM_UNITS`; `predictions` is `fc`)."""
    if layer == "predictions":
        return "fc"
    unit, _, part = layer.rpartition("_")
    if unit not in TIMM_UNITS or part not in ("conv", "bn"):
        return None
    return f"{TIMM_UNITS[unit]}.{part}"


register_names(TimmNames(timm_module, head="fc", normalization="tf",
                         architectures={"inception_v3": "inception_v3"}))


@register(
    paper=_V3, year=2015, input_shape=(299, 299, 3), preprocessing="tf", min_size=MIN_SIZE,
    recipe=RECIPE_V3, twin="inception_v3.InceptionV3",
    imagenet=keras_files("inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels",
                          "9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63",
                          CONFIGS["inception_v3"].layout()),
    params=ParamCounts(23_851_784, 23_817_352, f"{_KA} InceptionV3"),
    accuracy=(PublishedAccuracy(77.87, "timm inception_v3.tf_in1k (TF-slim release)", _TIMM, 299),),
)
@heads.contract_docstring(_AUX_DOC + "\n" + _LAYOUT_DOC)
def inception_v3(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                 name=None, aux_logits=False, layout="keras") -> keras.Model:
    """Inception v3 (Szegedy et al., 2015), graph- and weight-compatible with keras.applications.

    Input 299x299 (any size >= 75), scaled to [-1, 1]. Follows the TF-slim release that
    keras.applications reproduces, which departs from the paper's Figure 5: the 35x35
    modules keep a 1x1-5x5 branch beside the factorized double 3x3. Layers are named by
    module, branch and position (`mixed5_branch7x7dbl_2_conv`); the official file's
    automatic names load through a generated layer map. BatchNorm epsilon 1e-3 without
    scale, as the files were trained; `layout="torch"` builds timm's and torchvision's layout.
    """
    weights_timm.check_layout(layout, weights, _TORCH_LAYOUT)
    spec = heads.resolve("inception_v3", heads.contract_args(locals()))
    _check_aux(spec, aux_logits)
    config = CONFIGS["inception_v3"]
    inputs, x = heads.image_input(spec)
    x = stem(x, layout)
    aux_input = None
    for module in config.layout():
        x = inception_module(x, module, source=layout)
        if module.name == config.aux_after:
            aux_input = x
    main = heads.pooled_head(spec, x)
    if not aux_logits:
        return heads.finish(spec, inputs, main)
    aux = aux_head(spec, aux_input)
    heads.finish(spec, inputs, main)  # loads any weights into the shared layers but the aux head
    return keras.Model(inputs, [main, aux], name=spec.name)


