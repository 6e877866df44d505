"""ConvNeXt (Liu et al., 2022): a ResNet modernized, step by step, toward a vision Transformer.

The paper starts from ResNet-50 and adopts one Swin Transformer design choice at a time,
keeping each that helps. Every part of this module is one of those steps:

- Training recipe (`RECIPE`): 300 epochs of AdamW with the Transformers' augmentation
  and regularization (Mixup, CutMix, RandAugment, stochastic depth, label smoothing).
- Macro design: the **stage compute ratio** 3:3:9:3 (ResNet-50's was 3:4:6:3; Swin-T's
  1:1:3:1), the `depths` of `CONFIGS`; the **patchify stem** (`stem`): a 4x4 convolution
  of stride 4, non-overlapping like a Transformer's patch embedding, instead of ResNet's
  7x7 stride-2 convolution and max-pooling.
- **ResNeXt-ify**: the spatial convolution of each block is depthwise (a grouped
  convolution with one group per channel: it mixes space only, as self-attention mixes
  tokens), and the network is made wider to pay for it: 96 channels in the first stage
  instead of 64 (the `widths` of `CONFIGS`).
- **Inverted bottleneck**: each block's hidden layer is 4x wider than its input
  (`EXPANSION`), as a Transformer's MLP block, instead of ResNet's 4x narrower one.
- **Large kernel**: the depthwise convolution is **moved up**, before the 1x1
  convolutions (as attention comes before the MLP), then its kernel grown to 7x7
  (`KERNEL`).
- Micro design, all in `convnext_block`: **GELU** instead of ReLU; **fewer activations**
  (one, between the two 1x1 layers) and **fewer normalizations** (one, after the
  depthwise convolution); **LayerNorm instead of BatchNorm**; and **separate
  downsampling layers** (`downsample`: LayerNorm, then a 2x2 stride-2 convolution between
  stages, instead of a strided convolution inside the first block of a stage).

Two Transformer-era regularizers complete the block: LayerScale (Touvron et al., 2021),
a learned per-channel scale of the residual branch starting at 1e-6, and stochastic depth.
The head is global average pooling, a LayerNorm and the classifier.

Layer names are keras.applications' (`convnext_tiny_stem`, `..._stage_0_block_0_depthwise_conv`,
`..._layer_scale`), so its ConvNeXt files load by name; the stem and the downsampling layers
are small nested `keras.Sequential` models for the same reason (the files store each pair
of layers under one name).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import keras

from kerasarch import blocks, heads
from kerasarch import layers as ka_layers
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights import ImageNetWeights, keras_applications_file
from kerasarch.weights_timm import TimmNames, register_names

# LayerNorm epsilon of the paper's code and of keras.applications' port. Keras'
# LayerNormalization defaults to 1e-3 and PyTorch's to 1e-5; either would shift the
# activations the published weights were trained with.
LN_EPSILON = 1e-6
PATCH = 4  # the patchify stem: 4x4 patches, stride 4
KERNEL = 7  # the depthwise convolution's kernel ("large kernel" step)
EXPANSION = 4  # the inverted bottleneck's hidden width / block width


@dataclasses.dataclass(frozen=True)
class ConvNeXtConfig:
    """One row of the paper's model table: blocks and channels of the four stages.

    Attributes:
        depths: Blocks per stage (the stage compute ratio, 3:3:9:3 for ConvNeXt-T).
        widths: Channels of each stage; doubled at every downsampling layer.
    """

    depths: tuple[int, int, int, int]
    widths: tuple[int, int, int, int]


CONFIGS = {
    "convnext_tiny": ConvNeXtConfig((3, 3, 9, 3), (96, 192, 384, 768)),
    "convnext_small": ConvNeXtConfig((3, 3, 27, 3), (96, 192, 384, 768)),
    "convnext_base": ConvNeXtConfig((3, 3, 27, 3), (128, 256, 512, 1024)),
    "convnext_large": ConvNeXtConfig((3, 3, 27, 3), (192, 384, 768, 1536)),
    "convnext_xlarge": ConvNeXtConfig((3, 3, 27, 3), (256, 512, 1024, 2048)),
}


def layer_norm(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """LayerNorm over the channels, with the paper's epsilon (`LN_EPSILON`)."""
    return _ln_layer(name)(x)


def _ln_layer(name: str) -> keras.layers.Layer:
    return keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=name)


def stem(x: keras.KerasTensor, width: int, prefix: str) -> keras.KerasTensor:
    """The patchify stem: a 4x4 stride-4 convolution and a LayerNorm (224 -> 56)."""
    return keras.Sequential(
        [
            keras.layers.Conv2D(width, PATCH, strides=PATCH, name=f"{prefix}_stem_conv"),
            _ln_layer(f"{prefix}_stem_layernorm"),
        ],
        name=f"{prefix}_stem",
    )(x)


def downsample(x: keras.KerasTensor, width: int, index: int, prefix: str) -> keras.KerasTensor:
    """A separate downsampling layer between stages: LayerNorm, then a 2x2 stride-2 convolution.

    The paper found separate downsampling layers trained stably only with a normalization
    where the resolution changes: hence the LayerNorm first.
    """
    return keras.Sequential(
        [
            _ln_layer(f"{prefix}_downsampling_layernorm_{index}"),
            keras.layers.Conv2D(width, 2, strides=2, name=f"{prefix}_downsampling_conv_{index}"),
        ],
        name=f"{prefix}_downsampling_block_{index}",
    )(x)


def convnext_block(
    x: keras.KerasTensor, width: int, name: str, drop_rate: float, layer_scale: float | None
) -> keras.KerasTensor:
    """The ConvNeXt block: depthwise 7x7, LayerNorm, 1x1 up (x4), GELU, 1x1 down, LayerScale.

    The depthwise convolution keeps the kernel shape of a `Conv2D` with one group per
    channel, as keras.applications' files store it, and computes as `DepthwiseConv2D`
    (`kerasarch.layers.GroupedDepthwiseConv2D`). The 1x1 convolutions are `Dense` layers
    on the channel axis, as in the paper's code (the same operation, one matrix product).

    Args:
        x: The block's input, `width` channels.
        width: Channels of the stage.
        name: Prefix of the layer names.
        drop_rate: Stochastic depth rate of the residual branch.
        layer_scale: Initial LayerScale value, or None for no LayerScale.

    Returns:
        `x + branch(x)`.
    """
    shortcut = x
    x = ka_layers.GroupedDepthwiseConv2D(width, KERNEL, padding="same", name=f"{name}_depthwise_conv")(x)
    x = layer_norm(x, f"{name}_layernorm")
    x = keras.layers.Dense(EXPANSION * width, name=f"{name}_pointwise_conv_1")(x)
    x = keras.layers.Activation("gelu", name=f"{name}_gelu")(x)
    x = keras.layers.Dense(width, name=f"{name}_pointwise_conv_2")(x)
    if layer_scale is not None:
        x = ka_layers.LayerScale(layer_scale, name=f"{name}_layer_scale")(x)
    return blocks.residual(shortcut, x, name, drop_rate, f"{name}_add")


def check_layer_scale(value) -> float | None:
    """Validates `layer_scale_init_value`: None or 0 (no LayerScale), or a number in (0, 1]."""
    if value is None or (not isinstance(value, bool) and value == 0):
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.0 < value <= 1.0
    ):
        raise ValueError(
            f"Invalid value for argument `layer_scale_init_value`: {value!r}. Expected None or 0 "
            f"(no LayerScale) or a number in (0, 1] (the paper: 1e-6)."
        )
    return float(value)


def build(variant: str, args: dict) -> keras.Model:
    """Builds a ConvNeXt from its `CONFIGS` row and its builder's arguments (`locals()`)."""
    config = CONFIGS[variant]
    schedule = blocks.drop_path_schedule(config.depths, args["drop_path_rate"])
    layer_scale = check_layer_scale(args["layer_scale_init_value"])
    spec = heads.resolve(variant, heads.contract_args(args))
    inputs, x = heads.image_input(spec)
    # Layer names carry the variant (not the model's `name`), as keras.applications'
    # files do, so a renamed model still loads them.
    for stage, (depth, width) in enumerate(zip(config.depths, config.widths, strict=True)):
        x = stem(x, width, variant) if stage == 0 else downsample(x, width, stage - 1, variant)
        for block in range(depth):
            name = f"{variant}_stage_{stage}_block_{block}"
            x = convnext_block(x, width, name, schedule[stage][block], layer_scale)
    head_norm = functools.partial(layer_norm, name=f"{variant}_head_layernorm")
    return heads.finish(spec, inputs, heads.pooled_head(spec, x, pre_logits=head_norm))


FAMILY_DOC = """\
drop_path_rate (float): Stochastic depth: the drop probability of the last block's
    residual branch, rising linearly from 0 at the first block; inert at inference. The
    paper trains ImageNet-1k with 0.1 (T), 0.4 (S), 0.5 (B, L).
layer_scale_init_value (float | None): Initial value of every LayerScale (the paper:
    1e-6); None or 0 leaves LayerScale out (the weight files need it)."""

RECIPE = Recipe(
    "adamw", 4e-3, 4096, schedule="cosine", warmup_epochs=20, weight_decay=0.05,
    label_smoothing=0.1, epochs=300,
    source="Liu et al. 2022, appendix A.1 (ImageNet-1k): AdamW lr 4e-3 at batch 4096, cosine "
    "decay after 20 warmup epochs, weight decay 0.05, 300 epochs, label smoothing 0.1; also "
    "Mixup 0.8, CutMix 1.0, RandAugment (9, 0.5), random erasing 0.25, stochastic depth "
    "0.1/0.4/0.5/0.5 (T/S/B/L), LayerScale 1e-6 and an EMA of the weights",
)


def _keras_files(variant: str, top: str, notop: str) -> ImageNetWeights:
    """keras.applications' ConvNeXt files and their published SHA-256 digests.

    Their head's dense layer is kerasarch's `predictions`. The file without the head
    also holds the LayerNorm keras.applications puts on its `include_top=False` output
    (unnamed in its code, so `layer_normalization`; never trained: the conversion left it
    at its initial values); kerasarch's backbone output has no such layer. The files'
    `..._prestem_normalization` (ImageNet mean and variance, kerasarch's "torch"
    preprocessing) stores no weights.
    """
    return ImageNetWeights(
        keras_applications_file(f"convnext/{variant}.h5", top, "sha256"),
        keras_applications_file(f"convnext/{variant}_notop.h5", notop, "sha256"),
        top_layer_map={f"{variant}_head_dense": "predictions"},
        notop_ignore=("layer_normalization",),
    )


# timm's names, after the variant prefix of every layer (`convnext_tiny_`): fixed layers ...
TIMM_FIXED = {
    "stem_conv": "stem.0", "stem_layernorm": "stem.1", "head_layernorm": "head.norm",
    "predictions": "head.fc",
}
# ... block `stage_{S}_block_{B}` is `stages.{S}.blocks.{B}`; its layer scale is the block's `gamma`;
TIMM_BLOCK = {
    "depthwise_conv": "conv_dw", "layernorm": "norm", "pointwise_conv_1": "mlp.fc1",
    "pointwise_conv_2": "mlp.fc2", "layer_scale": "",
}
# ... and `downsampling_{layernorm|conv}_{i}` is `stages.{i + 1}.downsample.{0|1}`.
TIMM_DOWNSAMPLING = {"layernorm": "0", "conv": "1"}
_TIMM_LAYER = re.compile(
    r"(?:convnext_[a-z]+_)?(?:stage_(\d)_block_(\d+)_([a-z_0-9]+?)|downsampling_([a-z]+)_(\d)|(.+))"
)


def timm_module(layer: str) -> str | None:
    """The timm module of a ConvNeXt layer (`TIMM_FIXED`, `TIMM_BLOCK`, `TIMM_DOWNSAMPLING`)."""
    stage, block, part, down_part, down_index, rest = _TIMM_LAYER.fullmatch(layer).groups()
    if stage is not None and part in TIMM_BLOCK:
        return f"stages.{stage}.blocks.{block}" + (f".{TIMM_BLOCK[part]}" if TIMM_BLOCK[part] else "")
    if down_part in TIMM_DOWNSAMPLING:
        return f"stages.{int(down_index) + 1}.downsample.{TIMM_DOWNSAMPLING[down_part]}"
    return TIMM_FIXED.get(rest) if rest is not None else None


register_names(TimmNames(
    timm_module, head="head.fc", pre_logits=("head.norm",), suffixes={"LayerScale": {"gamma": "gamma"}},
    architectures={n: n for n in CONFIGS},
))

_KA = "keras.applications 3.15 ConvNeXt{} (LayerNorm has no moving statistics)"
_COMMON = dict(
    paper="A ConvNet for the 2020s (Liu et al.)", year=2022, preprocessing="torch",
    input_shape=(224, 224, 3), min_size=32, recipe=RECIPE,
)


@register(
    **_COMMON, twin="convnext.ConvNeXtTiny", params=ParamCounts(28_589_128, 28_589_128, _KA.format("Tiny")),
    imagenet=_keras_files(
        "convnext_tiny", "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
        "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
    ),
    accuracy=(PublishedAccuracy(
        82.07, "timm convnext_tiny.fb_in1k (the checkpoint keras.applications converted)",
        "timm results-imagenet.csv", 224,
    ),),
)
@heads.contract_docstring(FAMILY_DOC)
def convnext_tiny(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                  classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                  name=None, drop_path_rate=0.0, layer_scale_init_value=1e-6) -> keras.Model:
    """ConvNeXt-T (Liu et al., 2022), graph- and weight-compatible with keras.applications.

    Stages of 3, 3, 9, 3 blocks, 96 to 768 channels (28,589,128 parameters). Any input
    size >= 32, with or without the head; torchvision's ImageNet mean/std normalization in
    the graph. As the paper's code, the head's LayerNorm comes after pooling; unlike
    keras.applications, `include_top=False` returns the last stage's output without a
    LayerNorm (keras' is untrained, so the features are the same up to that normalization).
    """
    return build("convnext_tiny", locals())


@register(
    **_COMMON, twin="convnext.ConvNeXtSmall",
    params=ParamCounts(50_223_688, 50_223_688, _KA.format("Small")),
    imagenet=_keras_files(
        "convnext_small", "ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
        "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab",
    ),
)
@heads.contract_docstring(FAMILY_DOC)
def convnext_small(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                   classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                   name=None, drop_path_rate=0.0, layer_scale_init_value=1e-6) -> keras.Model:
    """ConvNeXt-S: stages of 3, 3, 27, 3 blocks, 96 to 768 channels; see `convnext_tiny`."""
    return build("convnext_small", locals())


@register(
    **_COMMON, twin="convnext.ConvNeXtBase",
    params=ParamCounts(88_591_464, 88_591_464, _KA.format("Base")),
    imagenet=_keras_files(
        "convnext_base", "52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
        "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45",
    ),
)
@heads.contract_docstring(FAMILY_DOC)
def convnext_base(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                  classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                  name=None, drop_path_rate=0.0, layer_scale_init_value=1e-6) -> keras.Model:
    """ConvNeXt-B: stages of 3, 3, 27, 3 blocks, 128 to 1024 channels; see `convnext_tiny`.

    keras.applications' ImageNet file holds the ImageNet-22k pre-trained, ImageNet-1k
    fine-tuned weights.
    """
    return build("convnext_base", locals())


@register(
    **_COMMON, twin="convnext.ConvNeXtLarge",
    params=ParamCounts(197_767_336, 197_767_336, _KA.format("Large")),
    imagenet=_keras_files(
        "convnext_large", "070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
        "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd",
    ),
)
@heads.contract_docstring(FAMILY_DOC)
def convnext_large(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                   classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                   name=None, drop_path_rate=0.0, layer_scale_init_value=1e-6) -> keras.Model:
    """ConvNeXt-L: stages of 3, 3, 27, 3 blocks, 192 to 1536 channels; see `convnext_base`."""
    return build("convnext_large", locals())


@register(
    **_COMMON, twin="convnext.ConvNeXtXLarge",
    params=ParamCounts(350_196_968, 350_196_968, _KA.format("XLarge")),
    imagenet=_keras_files(
        "convnext_xlarge", "c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
        "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05",
    ),
)
@heads.contract_docstring(FAMILY_DOC)
def convnext_xlarge(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                    name=None, drop_path_rate=0.0, layer_scale_init_value=1e-6) -> keras.Model:
    """ConvNeXt-XL: stages of 3, 3, 27, 3 blocks, 256 to 2048 channels; see `convnext_base`.

    The paper trains it on ImageNet-22k only (then fine-tunes on ImageNet-1k).
    """
    return build("convnext_xlarge", locals())
