"""Inception-ResNet v2 (Szegedy et al. 2016): Inception modules with scaled residual additions.

"Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
Figures 9 and 15-20, as the TF-slim release (and keras.applications) builds it, 299x299 in:

    stem        Inception v3's stem                                   -> 35x35x192
    mixed_5b    module A, widened (1x1 96 | 1x1-5x5 64 | double 3x3 96 | pool 64)  -> 35x35x320
    block35 x10 Inception-ResNet-A, residual scaled by 0.17          -> 35x35x320
    mixed_6a    reduction: 3x3/2 384 | 1x1-3x3-3x3/2 384 | maxpool     -> 17x17x1088
    block17 x20 Inception-ResNet-B (7x7 as 1x7, 7x1), scaled by 0.1  -> 17x17x1088
    mixed_7a    reduction: three strided 3x3 branches | maxpool        -> 8x8x2080
    block8 x10  Inception-ResNet-C (3x3 as 1x3, 3x1), scaled by 0.2  -> 8x8x2080
    conv_7b     1x1 unit to 1536                                      -> 8x8x1536

The stem, the units and the module machinery are Inception v3's (`kerasarch.models.inception`);
this module adds the residual blocks and their table. The model is registered in the
"inception" family.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from kerasarch import heads
from kerasarch import layers as ka_layers
from kerasarch.models.inception import (
    BN_EPSILON,
    BN_MOMENTUM,
    MIN_SIZE,
    Branch,
    Conv,
    Module,
    inception_module,
    keras_files,
    module_a,
    reduction_a,
    stem,
)
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register

_V4 = "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning (Szegedy et al.)"
_KA = "keras.applications 3.15"
_TIMM = "timm results-imagenet.csv"


@dataclasses.dataclass(frozen=True)
class ResidualBlock:
    """An Inception-ResNet block: `input + scale * conv1x1(module(input))`, then ReLU."""

    module: Module
    scale: float
    activation: bool = True


def reduction_c(name: str) -> Module:
    """Inception-ResNet v2's 17x17 -> 8x8 reduction (`mixed_7a`, Figure 18)."""
    return Module(name, (
        Branch("branch3x3a", (Conv(256, 1), Conv(384, 3, strides=2, padding="valid"))),
        Branch("branch3x3b", (Conv(256, 1), Conv(288, 3, strides=2, padding="valid"))),
        Branch("branch3x3dbl", (Conv(256, 1), Conv(288, 3), Conv(320, 3, strides=2, padding="valid"))),
        Branch("branch_pool", pool="max"),
    ))


def block35(name: str) -> Module:
    """Inception-ResNet-A's residual branches (Figure 16), 35x35."""
    return Module(name, (
        Branch("branch1x1", (Conv(32, 1),)),
        Branch("branch3x3", (Conv(32, 1), Conv(32, 3))),
        Branch("branch3x3dbl", (Conv(32, 1), Conv(48, 3), Conv(64, 3))),
    ))


def block17(name: str) -> Module:
    """Inception-ResNet-B's residual branches (Figure 17), 17x17: 7x7 as 1x7 then 7x1."""
    return Module(name, (
        Branch("branch1x1", (Conv(192, 1),)),
        Branch("branch7x7", (Conv(128, 1), Conv(160, (1, 7)), Conv(192, (7, 1)))),
    ))


def block8(name: str) -> Module:
    """Inception-ResNet-C's residual branches (Figure 19), 8x8: 3x3 as 1x3 then 3x1."""
    return Module(name, (
        Branch("branch1x1", (Conv(192, 1),)),
        Branch("branch3x3", (Conv(192, 1), Conv(224, (1, 3)), Conv(256, (3, 1)))),
    ))


@dataclasses.dataclass(frozen=True)
class InceptionResNetConfig:
    """Inception-ResNet v2's stage table: residual blocks per grid and their scales."""

    blocks35: int = 10
    scale35: float = 0.17
    blocks17: int = 20
    scale17: float = 0.1
    blocks8: int = 10
    scale8: float = 0.2

    def layout(self) -> tuple[Module | ResidualBlock, ...]:
        """Modules and residual blocks in order, named as keras.applications names them.

        The last block8 has scale 1 and no ReLU (keras.applications and the TF-slim release).
        """
        def stage(kind, make, count, scale):
            return [ResidualBlock(make(f"{kind}_{i}"), scale) for i in range(1, count + 1)]

        last = ResidualBlock(block8(f"block8_{self.blocks8}"), 1.0, activation=False)
        return (
            module_a("mixed_5b", 64, filters_1x1=96),
            *stage("block35", block35, self.blocks35, self.scale35),
            reduction_a("mixed_6a", (384, 256, 256, 384)),
            *stage("block17", block17, self.blocks17, self.scale17),
            reduction_c("mixed_7a"),
            *stage("block8", block8, self.blocks8 - 1, self.scale8),
            last,
        )


CONFIGS = {"inception_resnet_v2": InceptionResNetConfig()}


@keras.saving.register_keras_serializable(package=ka_layers.PACKAGE)
class ScaledResidual(keras.layers.Layer):
    """`shortcut + scale * residual`: Inception-ResNet's residual scaling (paper sec. 3.3).

    Scaling the residual by 0.1-0.3 before the addition kept the wide networks from dying
    early in training. Called on `[shortcut, residual]`.

    Args:
        scale: The factor of the residual.
        **kwargs: Base layer arguments.
    """

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        """`inputs[0] + scale * inputs[1]`."""
        shortcut, residual = inputs
        return ops.add(shortcut, ops.multiply(residual, self.scale))

    def compute_output_shape(self, input_shape):
        """The shortcut's shape."""
        return input_shape[0]

    def get_config(self):
        """The base config and `scale`."""
        config = super().get_config()
        config["scale"] = self.scale
        return config


def residual_block(x, block: ResidualBlock):
    """Branches, concatenation (`_mixed`), a 1x1 projection with bias (`_conv`), scaled add."""
    name = block.module.name
    mixed = inception_module(x, block.module, output_name=f"{name}_mixed")
    up = keras.layers.Conv2D(x.shape[-1], 1, name=f"{name}_conv")(mixed)
    x = ScaledResidual(block.scale, name=name)([x, up])
    if block.activation:
        x = keras.layers.Activation("relu", name=f"{name}_ac")(x)
    return x


RECIPE_RESNET_V2 = Recipe(
    "rmsprop", 0.045, 32, schedule="step", step_epochs=2, step_factor=1 / 0.94,
    source="Szegedy et al. 2016, sec. 4: RMSProp decay 0.9, epsilon 1.0, lr 0.045 x0.94 every 2 "
    "epochs (20 replicas); batch size and epochs not stated: v3's batch 32, every 2 epochs of the run",
)


@register(
    family="inception", paper=_V4, year=2016, input_shape=(299, 299, 3), preprocessing="tf",
    min_size=MIN_SIZE, recipe=RECIPE_RESNET_V2, twin="inception_resnet_v2.InceptionResNetV2",
    imagenet=keras_files("inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels",
                          "e693bd0210a403b3192acc6073ad2e96", "d19885ff4a710c122648d3b5c3b684e4",
                          CONFIGS["inception_resnet_v2"].layout()),
    params=ParamCounts(55_873_736, 55_813_192, f"{_KA} InceptionResNetV2"),
    accuracy=(PublishedAccuracy(80.43, "timm inception_resnet_v2.tf_in1k (TF-slim release)", _TIMM, 299),),
)
@heads.contract_docstring()
def inception_resnet_v2(*, include_top=True, weights=None, input_shape=None, pooling=None,
                        classes=1000, classifier_activation="softmax", include_preprocessing=True,
                        augmentation=None, name=None) -> keras.Model:
    """Inception-ResNet v2 (Szegedy et al., 2016), graph- and weight-compatible with keras.applications.

    Input 299x299 (any size >= 75), scaled to [-1, 1]. Inception v3's stem and first module
    (widened), then 10 / 20 / 10 residual inception blocks at 35x35 / 17x17 / 8x8, each
    adding `scale * conv1x1(branches)` to its input (`ScaledResidual`); the last block has
    scale 1 and no ReLU, as in the TF-slim release. The stem differs from the paper's
    Figure 3 (which is Inception-v4's), as in that release. keras' own layer names are kept
    (`block35_1_conv`, `conv_7b`); the branch units it leaves unnamed are named here
    (`block17_3_branch7x7_2_conv`) and load through a generated layer map.
    """
    spec = heads.resolve("inception_resnet_v2", heads.contract_args(locals()))
    inputs, x = heads.image_input(spec)
    x = stem(x)
    for item in CONFIGS["inception_resnet_v2"].layout():
        x = residual_block(x, item) if isinstance(item, ResidualBlock) else inception_module(x, item)
    x = keras.layers.Conv2D(1536, 1, use_bias=False, name="conv_7b")(x)
    x = keras.layers.BatchNormalization(scale=False, epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                        name="conv_7b_bn")(x)
    x = keras.layers.Activation("relu", name="conv_7b_ac")(x)
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))
