"""GoogLeNet (Szegedy et al. 2014) and BN-Inception (Ioffe and Szegedy 2015).

GoogLeNet, "Going Deeper with Convolutions", Table 1: a 7x7 stem, then nine inception
modules in three max-pooled stages, global average pooling, dropout 0.4 and the classifier.
Each module runs four branches side by side and concatenates them:

    1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max pool -> 1x1 projection

    module  #1x1  #3x3 reduce  #3x3  #5x5 reduce  #5x5  pool proj   output
    3a        64        96      128       16        32       32        256
    3b       128       128      192       32        96       64        480
    (max pool 3x3/2)
    4a       192        96      208       16        48       64        512
    4b       160       112      224       24        64       64        512
    4c       128       128      256       24        64       64        512
    4d       112       144      288       32        64       64        528
    4e       256       160      320       32       128      128        832
    (max pool 3x3/2)
    5a       256       160      320       32       128      128        832
    5b       384       192      384       48       128      128       1024

`TABLE1` holds these rows and `inception_module` is the one block function every row goes
through. Two auxiliary classifiers (after 4a and 4d) exist only with `aux_logits=True`.

BN-Inception ("Inception v2"), "Batch Normalization: Accelerating Deep Network Training",
Figure 5: BatchNorm after every convolution, the 5x5 branch replaced by two 3x3
convolutions, average pooling in most pool branches, and two stride-2 modules (3c, 4e)
instead of the max-pooling layers between stages. `FIGURE5` holds its rows and
`bn_inception_module` is its block function.
"""

from __future__ import annotations

import dataclasses
import re

import keras

from kerasarch import blocks, heads
from kerasarch import layers as ka_layers
from kerasarch.registry import ParamCounts, PublishedAccuracy, Recipe, register
from kerasarch.weights_timm import TimmNames, register_names

GOOGLENET_PAPER = "Going Deeper with Convolutions (Szegedy et al.)"
BN_PAPER = (
    "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate "
    "Shift (Ioffe, Szegedy)"
)


@dataclasses.dataclass(frozen=True)
class InceptionRow:
    """One row of GoogLeNet's Table 1: the widths of an inception module's four branches."""

    name: str
    conv1x1: int
    reduce3x3: int
    conv3x3: int
    reduce5x5: int
    conv5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        """Channels of the concatenated output."""
        return self.conv1x1 + self.conv3x3 + self.conv5x5 + self.pool_proj


TABLE1 = (
    InceptionRow("3a", 64, 96, 128, 16, 32, 32),
    InceptionRow("3b", 128, 128, 192, 32, 96, 64),
    InceptionRow("4a", 192, 96, 208, 16, 48, 64),
    InceptionRow("4b", 160, 112, 224, 24, 64, 64),
    InceptionRow("4c", 128, 128, 256, 24, 64, 64),
    InceptionRow("4d", 112, 144, 288, 32, 64, 64),
    InceptionRow("4e", 256, 160, 320, 32, 128, 128),
    InceptionRow("5a", 256, 160, 320, 32, 128, 128),
    InceptionRow("5b", 384, 192, 384, 48, 128, 128),
)
AUX_AFTER = ("4a", "4d")  # the modules the two auxiliary classifiers read


@dataclasses.dataclass(frozen=True)
class BNInceptionRow:
    """One row of the BN paper's Figure 5 (a zero `conv1x1` or `pool_proj`: no such branch).

    A `stride` of 2 makes the module downsample: its 3x3 and second double-3x3 convolutions
    and its (max) pooling stride 2, and the pooled input passes through unprojected.
    """

    name: str
    conv1x1: int
    reduce3x3: int
    conv3x3: int
    reduce_double: int
    double3x3: int
    pool: str  # "avg" or "max"
    pool_proj: int
    stride: int = 1


FIGURE5 = (
    BNInceptionRow("3a", 64, 64, 64, 64, 96, "avg", 32),
    BNInceptionRow("3b", 64, 64, 96, 64, 96, "avg", 64),
    BNInceptionRow("3c", 0, 128, 160, 64, 96, "max", 0, stride=2),
    BNInceptionRow("4a", 224, 64, 96, 96, 128, "avg", 128),
    BNInceptionRow("4b", 192, 96, 128, 96, 128, "avg", 128),
    BNInceptionRow("4c", 160, 128, 160, 128, 160, "avg", 128),
    BNInceptionRow("4d", 96, 128, 192, 160, 192, "avg", 128),
    BNInceptionRow("4e", 0, 128, 192, 192, 256, "max", 0, stride=2),
    BNInceptionRow("5a", 352, 192, 320, 160, 224, "avg", 128),
    BNInceptionRow("5b", 352, 192, 320, 192, 224, "max", 128),
)


@dataclasses.dataclass(frozen=True)
class Style:
    """How a convolution unit is written: conv + ReLU (the paper) or conv + BatchNorm + ReLU."""

    batch_norm: bool
    conv_bias: bool
    epsilon: float = 1e-3


PAPER_STYLE = Style(batch_norm=False, conv_bias=True)
# torchvision's BasicConv2d: no bias, BatchNorm eps 1e-3 (PyTorch's default is 1e-5).
TORCHVISION_STYLE = Style(batch_norm=True, conv_bias=False, epsilon=1e-3)
# The caffe BN-Inception that Cadene's pretrainedmodels ports: biases kept, eps 1e-5.
BN_INCEPTION_STYLE = Style(batch_norm=True, conv_bias=True, epsilon=1e-5)


def conv_unit(x, filters: int, kernel: int, name: str, style: Style, strides: int = 1):
    """A convolution, BatchNorm where the style has it, and ReLU; padded symmetrically."""
    x, padding = blocks.pad_for_conv(x, kernel, strides, "torch", name)
    if not style.batch_norm:
        return keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                   activation="relu", name=name)(x)
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                            use_bias=style.conv_bias, name=name)(x)
    # PyTorch's momentum 0.1 is Keras' 0.9; both references train with it.
    x = keras.layers.BatchNormalization(epsilon=style.epsilon, momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _max_pool(x, size: int, strides: int, name: str):
    # "same" is caffe's and torchvision's ceil_mode pooling wherever the map size is even
    # (every stage at 224x224): one extra row and column at the bottom right.
    return keras.layers.MaxPooling2D(size, strides=strides, padding="same", name=name)(x)


def inception_module(x, row: InceptionRow, style: Style, kernel5x5: int = 5):
    """GoogLeNet's inception module: four branches of `row`'s widths, concatenated.

    Args:
        x: The input feature map.
        row: Its row of `TABLE1`.
        style: The convolution unit.
        kernel5x5: Kernel of the "5x5" branch (torchvision's variant uses 3).

    Returns:
        The module's output, `row.out_channels` channels.
    """
    name = f"inception_{row.name}"
    b1 = conv_unit(x, row.conv1x1, 1, f"{name}_1x1", style)
    b2 = conv_unit(x, row.reduce3x3, 1, f"{name}_3x3_reduce", style)
    b2 = conv_unit(b2, row.conv3x3, 3, f"{name}_3x3", style)
    b3 = conv_unit(x, row.reduce5x5, 1, f"{name}_5x5_reduce", style)
    b3 = conv_unit(b3, row.conv5x5, kernel5x5, f"{name}_5x5", style)
    b4 = _max_pool(x, 3, 1, f"{name}_pool")
    b4 = conv_unit(b4, row.pool_proj, 1, f"{name}_pool_proj", style)
    return keras.layers.Concatenate(name=f"{name}_output")([b1, b2, b3, b4])


def aux_head(x, spec: heads.ModelSpec, name: str, style: Style):
    """An auxiliary classifier: pool to 4x4, 1x1 conv 128, fc 1024, dropout 0.7, classifier.

    The paper pools 5x5 with stride 3 (4x4 from the 14x14 map at 224); an adaptive pooling
    to 4x4 (torchvision's) gives the same grid at 224 and keeps fc's input size at any size.
    """
    x = ka_layers.AdaptiveAveragePooling2D(4, name=f"{name}_pool")(x)
    x = conv_unit(x, 128, 1, f"{name}_conv", style)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = keras.layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return keras.layers.Dense(spec.classes, activation=spec.classifier_activation,
                              dtype="float32", name=f"{name}_predictions")(x)


def _stem(x, style: Style, lrn: bool):
    """The stem: conv 7x7/2, max pool, (LRN), 1x1 reduce, conv 3x3 192, (LRN), max pool."""
    x = conv_unit(x, 64, 7, "conv1_7x7_s2", style, strides=2)
    x = _max_pool(x, 3, 2, "pool1_3x3_s2")
    if lrn:
        x = ka_layers.LocalResponseNormalization(name="pool1_norm1")(x)
    x = conv_unit(x, 64, 1, "conv2_3x3_reduce", style)
    x = conv_unit(x, 192, 3, "conv2_3x3", style)
    if lrn:
        x = ka_layers.LocalResponseNormalization(name="conv2_norm2")(x)
    return _max_pool(x, 3, 2, "pool2_3x3_s2")


def _googlenet(batch_norm: bool, aux_logits: bool, kwargs: dict) -> keras.Model:
    spec = heads.resolve("googlenet_bn" if batch_norm else "googlenet", kwargs)
    if aux_logits and not spec.include_top:
        raise ValueError("Invalid value for argument `aux_logits`: True. The auxiliary "
                         "classifiers need include_top=True.")
    style = TORCHVISION_STYLE if batch_norm else PAPER_STYLE
    inputs, x = heads.image_input(spec)
    x = _stem(x, style, lrn=not batch_norm)
    aux = []
    for row in TABLE1:
        if row.name in ("4a", "5a"):  # the max pooling between stages
            size = 2 if batch_norm and row.name == "5a" else 3  # torchvision pools 2x2 there
            x = _max_pool(x, size, 2, f"pool{row.name[0]}_{size}x{size}_s2")
        x = inception_module(x, row, style, kernel5x5=3 if batch_norm else 5)
        if aux_logits and row.name in AUX_AFTER:
            aux.append(aux_head(x, spec, f"aux{len(aux) + 1}", style))
    rate = 0.2 if batch_norm else 0.4
    output = heads.pooled_head(
        spec, x, pre_logits=keras.layers.Dropout(rate, name="pool5_dropout")
    )
    return heads.finish(spec, inputs, [output, *aux] if aux_logits else output)


# torchvision's state-dict names for `googlenet_bn` (`googlenet-1378be20.pth`; timm has no
# GoogLeNet). Every conv_unit is a BasicConv2d (`<module>.conv`, `<module>.bn`): the stem ...
TORCHVISION_STEM = {"conv1_7x7_s2": "conv1", "conv2_3x3_reduce": "conv2", "conv2_3x3": "conv3"}
# ... the branches of `inception_{row}` (torchvision's `inception{row}`; branch4.0 is the pool) ...
TORCHVISION_BRANCH = {
    "1x1": "branch1", "3x3_reduce": "branch2.0", "3x3": "branch2.1", "5x5_reduce": "branch3.0",
    "5x5": "branch3.1", "pool_proj": "branch4.1",
}
# ... and the auxiliary heads `aux1`/`aux2`, which the file holds but torchvision says are not
# pretrained: they are skipped (`ignored`), kerasarch's stay newly initialized.
TORCHVISION_AUX = {"conv": "conv", "fc": "fc1", "predictions": "fc2"}


def torchvision_module(layer: str) -> str | None:
    """The torchvision module of a `googlenet_bn` layer (`TORCHVISION_STEM`, `_BRANCH`, `_AUX`)."""
    if layer == "predictions":
        return "fc"
    base = layer.removesuffix("_bn")
    unit = ".bn" if layer.endswith("_bn") else ".conv"
    if base in TORCHVISION_STEM:
        return TORCHVISION_STEM[base] + unit
    module = re.fullmatch(r"inception_(\d[a-e])_(\w+)", base)
    if module and module[2] in TORCHVISION_BRANCH:
        return f"inception{module[1]}.{TORCHVISION_BRANCH[module[2]]}{unit}"
    aux = re.fullmatch(r"(aux\d)_(\w+)", base)
    if aux and aux[2] in TORCHVISION_AUX:
        return f"{aux[1]}.{TORCHVISION_AUX[aux[2]]}" + (unit if aux[2] == "conv" else "")
    return None


# torchvision's GoogLeNet weights were ported from TensorFlow: torchvision loads them with
# transform_input=True, which turns its mean/std input into [-1, 1]; so "tf" normalization.
register_names(TimmNames(
    torchvision_module, head="fc", architectures={"googlenet_bn": "googlenet"}, normalization="tf",
    ignored=("aux1", "aux2"),
))

_GOOGLENET_ARGS = """\
aux_logits (bool): Add the two auxiliary classifiers (after 4a and 4d, the paper's
    training aid); the model then returns `[main, aux1, aux2]`. Training weights their
    losses 0.3; inference and exports use the main output only.
batch_norm (bool): torchvision's variant (BatchNorm eps 1e-3, no conv biases, no LRN,
    3x3 kernels in the "5x5" branch, dropout 0.2); `kerasarch.googlenet_bn` sets it."""

RECIPE = Recipe(
    "sgd", 0.01, 32, schedule="step", step_epochs=8, step_factor=1 / 0.96, weight_decay=2e-4,
    epochs=60,
    source="Szegedy et al. 2014, sec. 6: SGD momentum 0.9, learning rate cut by 4% every 8 "
    "epochs, auxiliary losses weighted 0.3; base rate 0.01 at batch 32, weight decay 2e-4 "
    "and 60 epochs (2.4M iterations) from BVLC's caffe reproduction (bvlc_googlenet solver)",
)
_COMMON = dict(paper=GOOGLENET_PAPER, year=2014, input_shape=(224, 224, 3), min_size=32,
               recipe=RECIPE)


@register(name="googlenet_bn", preset={"batch_norm": True}, preprocessing="torch", **_COMMON,
          params=ParamCounts(6_639_464, 6_624_904, "torchvision 0.29 googlenet (trainable, "
                             "no auxiliary heads); total adds BatchNorm moving mean/variance"),
          accuracy=(PublishedAccuracy(69.778, "torchvision", "torchvision 0.29 googlenet meta",
                                      224),))
@register(preprocessing="caffe", **_COMMON,
          params=ParamCounts(6_998_552, 6_998_552, "counted from this build (Table 1 widths, "
                             "biases on every convolution, no auxiliary heads)"))
@heads.contract_docstring(_GOOGLENET_ARGS)
def googlenet(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, augmentation=None,
              name=None, aux_logits=False, batch_norm=False) -> keras.Model:
    """GoogLeNet, Inception v1 (Szegedy et al., 2014): nine inception modules of Table 1.

    Input: 224x224x3 raw RGB in [0, 255] (any size >= 32). Normalization: caffe (BGR minus
    the ImageNet mean, as BVLC's caffe model), or torchvision's mean/std with
    `batch_norm=True`. No ImageNet weights: Keras publishes none (torchvision's are `.pth`).

    The default is the paper's network: ReLU convolutions with biases, local response
    normalization after the first pooling and after conv2 (`kerasarch.layers.
    LocalResponseNormalization`, caffe's size 5, alpha 1e-4, beta 0.75), dropout
    0.4 before the classifier. Departures: the auxiliary heads pool adaptively to 4x4
    (the paper's 5x5/3 pooling gives 4x4 only at 224); max pooling pads at the bottom right
    ("same"), which is caffe's rounding-up at 224.

    `batch_norm=True` is torchvision's `googlenet`, 6,624,904 trainable parameters: every
    convolution unbiased with BatchNorm (eps 1e-3 as its BasicConv2d), no LRN, the "5x5"
    branch with a 3x3 kernel (a known quirk of the ported weights, pytorch/vision#906), a
    2x2 pooling before 5a and dropout 0.2. `kerasarch train` builds either with
    `aux_logits=True`, as the paper trained.
    """
    return _googlenet(batch_norm, aux_logits, heads.contract_args(locals()))


def bn_inception_module(x, row: BNInceptionRow, style: Style):
    """BN-Inception's module: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | pool (-> 1x1)."""
    name, stride = f"inception_{row.name}", row.stride
    branches = []
    if row.conv1x1:
        branches.append(conv_unit(x, row.conv1x1, 1, f"{name}_1x1", style))
    b = conv_unit(x, row.reduce3x3, 1, f"{name}_3x3_reduce", style)
    branches.append(conv_unit(b, row.conv3x3, 3, f"{name}_3x3", style, strides=stride))
    b = conv_unit(x, row.reduce_double, 1, f"{name}_double_3x3_reduce", style)
    b = conv_unit(b, row.double3x3, 3, f"{name}_double_3x3_1", style)
    branches.append(conv_unit(b, row.double3x3, 3, f"{name}_double_3x3_2", style, strides=stride))
    if row.pool == "max":
        b = _max_pool(x, 3, stride, f"{name}_pool")
    else:
        b = keras.layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if row.pool_proj:
        b = conv_unit(b, row.pool_proj, 1, f"{name}_pool_proj", style)
    branches.append(b)
    return keras.layers.Concatenate(name=f"{name}_output")(branches)


@register(paper=BN_PAPER, year=2015, input_shape=(224, 224, 3), min_size=32,
          preprocessing="caffe",
          params=ParamCounts(11_315_272, 11_295_240, "Cadene pretrainedmodels bninception "
                             "(trainable, counted from its layer list); total adds BatchNorm "
                             "moving mean/variance"),
          recipe=Recipe(
              "sgd", 0.0075, 32, schedule="step", step_epochs=8 / 6, step_factor=1 / 0.96,
              weight_decay=4e-5, epochs=10,
              source="Ioffe and Szegedy 2015, sec. 4.2.1 (BN-x5): the Inception rate 0.0015 "
              "x5 at batch 32, its 4%-per-8-epochs decay 6x faster, L2 reduced 5x, no "
              "dropout; the base L2 (2e-4) and epoch count (about 10: the paper reaches "
              "Inception's accuracy in 14x fewer steps) are not printed there",
          ),
          accuracy=(PublishedAccuracy(74.8, "paper", "Ioffe and Szegedy 2015, BN-Inception "
                                      "single crop (survey tables)", 224),))
@heads.contract_docstring()
def inception_v2(*, include_top=True, weights=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, augmentation=None,
                 name=None) -> keras.Model:
    """BN-Inception, "Inception v2" (Ioffe and Szegedy, 2015), 11,295,240 trainable parameters.

    The definition followed is the BN paper's Figure 5 table as the caffe BN-Inception model
    ported in Cadene's pretrainedmodels (`bninception`, Xiong's port) builds it: branch widths
    of `FIGURE5`, BatchNorm (eps 1e-5) after convolutions that keep their biases, stride-2
    modules 3c and 4e with max pooling passed through, max pooling in 5b, no dropout, no
    LRN. Its parameter count is counted from that file's layer list (the 11.2M of survey
    tables). The widths sum to 608 channels after 4c and 4d and 1056 after 4e, where the
    paper's output column prints 576 and 1024; Cadene's model follows the widths, as here.
    The first convolution is a plain 7x7, as there (TF-slim's `inception_v2` can make it
    depthwise-separable, `use_separable_conv`).

    Input: 224x224x3 raw RGB in [0, 255] (any size >= 32); caffe normalization (BGR minus the
    ImageNet mean). Average pooling in the branches excludes the border padding from the
    mean (Keras "same"); caffe includes it. No ImageNet weights are published for Keras.
    """
    spec = heads.resolve("inception_v2", heads.contract_args(locals()))
    style = BN_INCEPTION_STYLE
    inputs, x = heads.image_input(spec)
    x = conv_unit(x, 64, 7, "conv1_7x7_s2", style, strides=2)
    x = _max_pool(x, 3, 2, "pool1_3x3_s2")
    x = conv_unit(x, 64, 1, "conv2_3x3_reduce", style)
    x = conv_unit(x, 192, 3, "conv2_3x3", style)
    x = _max_pool(x, 3, 2, "pool2_3x3_s2")
    for row in FIGURE5:
        x = bn_inception_module(x, row, style)
    return heads.finish(spec, inputs, heads.pooled_head(spec, x))
