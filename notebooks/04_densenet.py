# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 4: DenseNet, the channel rule and what a parameter count measures
#
# A DenseNet layer reads the feature maps of *every* earlier layer of its block, concatenated,
# and adds `k` new ones (the growth rate). This lesson reads that rule off a built DenseNet-121,
# counts where its parameters sit, sets it beside ResNet-50 (parameters, FLOPs, published
# accuracy), and checks the "DenseNet-264" figure survey tables print.
#
# Every number below is printed by the code. The default (quick) mode is what the test suite
# runs; `KERASARCH_LESSON_FULL=1` also builds DenseNet-264 and checks its count on the graph
# (the committed notebook holds that run's outputs; the last cell prints how long it took).

# %%
import os
import time

FULL = os.environ.get("KERASARCH_LESSON_FULL") == "1"
START = time.perf_counter()
print(f"{'full' if FULL else 'quick'} mode")

# %%
import math

import keras

import kerasarch
from kerasarch.analysis import flops
from kerasarch.models import densenet

# %% [markdown]
# ## The channel rule, on the built graph
#
# DenseNet-121 is the paper's DenseNet-BC with growth rate `k = 32` and blocks of 6, 12, 24
# and 16 layers (`kerasarch.models.densenet.CONFIGS`). Each dense layer `conv{b}_block{l}`
# starts with a BatchNorm (`_0_bn`) on everything the block has produced so far and ends by
# concatenating its `k` new channels to it (`_concat`). If the block's input has `k0`
# channels, layer `l` therefore receives `k0 + k * (l - 1)`. Below, the left column is the
# rule, the right one what the graph's `_0_bn` layer actually receives.

# %%
model = kerasarch.densenet121()
config = densenet.CONFIGS["densenet121"]
k = config.growth_rate
print(config)


def channels_in(layer_name):
    """Channels entering a layer of the built model."""
    return model.get_layer(layer_name).input.shape[-1]


k0 = channels_in("conv2_block1_0_bn")  # the stem's output
print(f"block 1 (conv2) starts from k0 = {k0} channels")
print(" layer   k0 + k(l-1)   graph")
for layer in range(1, config.block_config[0] + 1):
    rule, graph = k0 + k * (layer - 1), channels_in(f"conv2_block{layer}_0_bn")
    print(f"{layer:>6} {rule:>13} {graph:>7}")
    assert rule == graph

# %% [markdown]
# The same check over all 58 layers of the four blocks, and the transitions between them:
# a transition is BN-ReLU, a 1x1 convolution keeping `floor(c * compression)` of its `c`
# channels, and 2x2 average pooling. It is what keeps the channel count from growing
# without bound (and where the resolution halves).

# %%
k0, checked = channels_in("conv2_block1_0_bn"), 0
for index, layers in enumerate(config.block_config):
    stage = index + 2
    for layer in range(1, layers + 1):
        assert channels_in(f"conv{stage}_block{layer}_0_bn") == k0 + k * (layer - 1)
        checked += 1
    end = model.get_layer(f"conv{stage}_block{layers}_concat").output.shape[-1]
    assert end == k0 + k * layers
    line = f"block {index + 1}: {k0:>4} + {layers:>2} x {k} = {end:>4} channels"
    if index < len(config.block_config) - 1:
        kept = model.get_layer(f"pool{stage}_conv").filters
        assert kept == math.floor(end * config.compression)
        line += f"  -> transition pool{stage} keeps floor({end} x {config.compression}) = {kept}"
        k0 = kept
    print(line)
print(f"checked the rule on all {checked} dense layers")

# %% [markdown]
# ## Where the parameters are
#
# Each dense layer has two convolutions: a 1x1 "bottleneck" from its (growing) input to
# `bn_size * k = 128` channels, and a 3x3 from 128 to `k = 32` channels, whose size does
# not depend on the input at all. Grouping DenseNet-121's weights by kind:

# %%
groups = {"1x1 bottleneck convs": 0, "3x3 convs": 0, "transition convs": 0, "stem conv": 0,
          "BatchNorm (incl. moving stats)": 0, "classifier": 0}
for layer in model.layers:
    n = layer.count_params()
    if isinstance(layer, keras.layers.BatchNormalization):
        groups["BatchNorm (incl. moving stats)"] += n
    elif layer.name.endswith("_1_conv"):
        groups["1x1 bottleneck convs"] += n
    elif layer.name.endswith("_2_conv"):
        groups["3x3 convs"] += n
    elif layer.name.startswith("pool") and layer.name.endswith("_conv"):
        groups["transition convs"] += n
    elif layer.name == "conv1_conv":
        groups["stem conv"] += n
    elif layer.name == "predictions":
        groups["classifier"] += n
assert sum(groups.values()) == model.count_params()
for group, n in groups.items():
    print(f"{group:>32}: {n:>9,}  ({n / model.count_params():5.1%})")
print(f"{'total':>32}: {model.count_params():>9,}")
print(f"one 3x3 conv: 3 x 3 x {config.bn_size * k} x {k} = {9 * config.bn_size * k * k:,} weights, "
      f"in each of the {checked} dense layers")

# %% [markdown]
# ## DenseNet-121 beside ResNet-50
#
# Parameters are measured on the built models (Keras' count includes BatchNorm's moving
# statistics; "trainable" is the figure PyTorch libraries print). FLOPs are counted by
# TensorFlow's profiler on one 224x224 image, multiply-adds counted as two
# (`kerasarch.analysis.flops`). The top-1 figures are **published** ImageNet accuracies of
# torchvision's weights for these architectures (torchvision's model metadata), not
# measured here.

# %%
resnet50 = kerasarch.resnet50()
PUBLISHED_TOP1 = {  # ImageNet-1k top-1 (%), torchvision meta (IMAGENET1K_V1 weights)
    "densenet121": kerasarch.model_info("densenet121").accuracy[0].top1,
    "resnet50": 76.1,
}
print(f"densenet121's figure comes from: {kerasarch.model_info('densenet121').accuracy[0].source}")
rows = {}
for name, net in (("densenet121", model), ("resnet50", resnet50)):
    trainable = sum(math.prod(w.shape) for w in net.trainable_weights)
    rows[name] = (net.count_params(), trainable, flops(net), PUBLISHED_TOP1[name])
print(f"{'model':<12} {'params':>11} {'trainable':>11} {'GFLOPs':>7} {'published top-1':>16}")
for name, (total, trainable, gflops, top1) in rows.items():
    print(f"{name:<12} {total:>11,} {trainable:>11,} {gflops / 1e9:>7.2f} {top1:>15.1f}%")
param_ratio = rows["resnet50"][1] / rows["densenet121"][1]
flop_ratio = rows["resnet50"][2] / rows["densenet121"][2]
gap = PUBLISHED_TOP1["resnet50"] - PUBLISHED_TOP1["densenet121"]
print(f"ResNet-50 has {param_ratio:.1f}x the trainable parameters, {flop_ratio:.2f}x the FLOPs, "
      f"and {gap:.1f} points more published top-1.")
assert param_ratio > 3 and flop_ratio < param_ratio

# %% [markdown]
# Read the three ratios together. DenseNet-121 stores about a third of ResNet-50's
# parameters, but its FLOPs shrink much less: every 3x3 convolution runs at full resolution
# on the concatenated maps, and parameters say nothing about how many times a weight is
# applied. The published accuracies of these two sets of torchvision weights put ResNet-50
# a little ahead. A parameter count is a measure of storage, not of compute and not of
# accuracy.
#
# ## "DenseNet-264": which network is the survey's 72.7M?
#
# The paper's DenseNet-264 has `k = 32` and blocks (6, 12, 64, 48). Survey tables often
# print a much larger count for it, the figure timm reports for its `densenet264d`. The
# count of any DenseNet-BC can be written out from the layer definitions above, with
# PyTorch's convention (BatchNorm: 2 trainable weights per channel) so it compares with
# timm's figure. timm's "deep" stem is three 3x3 convolutions (3 -> k -> k -> 2k channels)
# instead of one 7x7.

# %%
def densenet_params(growth_rate, block_config, bn_size=4, compression=0.5, classes=1000,
                    deep_stem=False, bn_weights=2):
    """Parameters of a DenseNet-BC with a 2k-channel stem, written out layer by layer."""
    k, stem = growth_rate, 2 * growth_rate
    if deep_stem:  # 3x3 convs 3 -> k -> k -> 2k, each followed by BatchNorm
        total = 9 * 3 * k + 9 * k * k + 9 * k * stem + bn_weights * (k + k + stem)
    else:  # one 7x7 conv 3 -> 2k and its BatchNorm
        total = 49 * 3 * stem + bn_weights * stem
    c = stem
    for index, layers in enumerate(block_config):
        for _ in range(layers):
            total += bn_weights * c + c * bn_size * k + bn_weights * bn_size * k + 9 * bn_size * k * k
            c += k
        if index < len(block_config) - 1:
            kept = math.floor(c * compression)
            total += bn_weights * c + c * kept
            c = kept
    return total + bn_weights * c + c * classes + classes


SURVEY_264 = 72_736_216  # timm 1.0 densenet264d, trainable parameters, as survey tables print it
paper_264 = densenet_params(32, (6, 12, 64, 48))
pinned = kerasarch.model_info("densenet264").params
print(f"the formula on DenseNet-121:              {densenet_params(32, (6, 12, 24, 16)):>11,} "
      f"(built model above: {rows['densenet121'][1]:,})")
print(f"paper's DenseNet-264 (k=32, 7x7 stem):    {paper_264:>11,} (kerasarch pins {pinned.trainable:,})")
print(f"same blocks, k=48, 7x7 stem:              {densenet_params(48, (6, 12, 64, 48)):>11,}")
print(f"same blocks, k=48, deep stem (densenet264d): "
      f"{densenet_params(48, (6, 12, 64, 48), deep_stem=True):,} (survey figure {SURVEY_264:,})")
print(f"the survey's figure is {SURVEY_264 / paper_264:.2f}x the paper network's count")
assert densenet_params(32, (6, 12, 24, 16)) == rows["densenet121"][1]
assert paper_264 == pinned.trainable
assert densenet_params(48, (6, 12, 64, 48), deep_stem=True) == SURVEY_264
from_stem = SURVEY_264 - densenet_params(48, (6, 12, 64, 48))
print(f"of the {SURVEY_264 - paper_264:,} extra parameters, the deep stem accounts for {from_stem:,}")
assert from_stem < 0.01 * (SURVEY_264 - paper_264)

# %%
if FULL:  # build the paper's DenseNet-264 and count its weights on the graph
    net = kerasarch.densenet264()
    trainable = sum(math.prod(w.shape) for w in net.trainable_weights)
    print(f"built densenet264: {net.count_params():,} parameters, {trainable:,} trainable, "
          f"{flops(net) / 1e9:.2f} GFLOPs at 224x224")
    assert trainable == paper_264 and net.count_params() == pinned.total
    del net
else:
    print("quick mode: densenet264 is not built (set KERASARCH_LESSON_FULL=1)")

# %% [markdown]
# The formula reproduces both the built models and the survey's figure exactly, and it says
# where the survey's number comes from: it is not the paper's DenseNet-264 but timm's
# `densenet264d`, whose growth rate is 48 instead of 32 (the 3x3 weights grow with `k²`,
# the 1x1 ones with `k` times a channel count that itself grows with `k`) and whose stem is
# three 3x3 convolutions. The deep stem adds little; the growth rate accounts for nearly all
# of the difference. What to conclude: a name is not a configuration. Before comparing
# parameter counts from two tables, check the growth rate (or width), the depth and the
# stem each figure was counted for, and which convention counted them.

# %%
elapsed = time.perf_counter() - START
print(f"This run ({'full' if FULL else 'quick'} mode) took {elapsed:.0f} s on {os.cpu_count()} CPU core(s).")
