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
# # Lesson 2: Inception, or how to afford width
#
# GoogLeNet (Szegedy et al. 2014) won ImageNet 2014 with fewer parameters than AlexNet.
# Its building block, the *inception module*, looks at the same input through a 1x1, a
# 3x3 and a 5x5 convolution and a 3x3 max pooling, side by side, and concatenates the
# results. Done naively that is very expensive; the 1x1 convolutions placed in front of
# the large kernels ("reductions") are what makes it affordable. Inception v3 (Szegedy et
# al. 2015) went further and *factorized* the large kernels themselves.
#
# This lesson measures all of it on built Keras graphs: parameters with `count_params()`,
# FLOPs with `kerasarch.analysis.flops` (TensorFlow's profiler on the traced graph, a
# multiply-add counted as two). Nothing is trained. The default (quick) mode is what the
# test suite runs; `KERASARCH_LESSON_FULL=1` builds the auxiliary-head model at the native
# 224x224 instead of 96x96. Every number in the text is printed by the code.

# %%
import os
import time

FULL = os.environ.get("KERASARCH_LESSON_FULL") == "1"
START = time.perf_counter()
AUX_SIZE = 224 if FULL else 96
print(f"{'full' if FULL else 'quick'} mode: the auxiliary-head model at {AUX_SIZE}x{AUX_SIZE}")

# %%
import keras
import numpy as np
import tensorflow as tf

import kerasarch
from kerasarch import heads
from kerasarch.analysis import flops
from kerasarch.models import googlenet
from kerasarch.train import model_setup

# %% [markdown]
# ## One inception module, with and without its 1x1 reductions
#
# Module 3a of the paper's Table 1 reads the stem's 28x28x192 map. Its row:

# %%
ROW = googlenet.TABLE1[0]
SHAPE = (28, 28, 192)  # the stem's output at 224x224, 3a's input
print(ROW, "input", SHAPE)
print("output channels:", ROW.out_channels)

# %% [markdown]
# The *naive* module (the paper's Figure 2a) applies the 3x3 and 5x5 convolutions to all
# 192 input channels and passes the pooled input through unprojected. The module with
# reductions (Figure 2b, what GoogLeNet uses) is `googlenet.inception_module`, the same
# function that builds every module of the network.

# %%
def naive_module(x, row):
    conv = googlenet.conv_unit
    style = googlenet.PAPER_STYLE
    b1 = conv(x, row.conv1x1, 1, "naive_1x1", style)
    b2 = conv(x, row.conv3x3, 3, "naive_3x3", style)
    b3 = conv(x, row.conv5x5, 5, "naive_5x5", style)
    b4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="naive_pool")(x)
    return keras.layers.Concatenate(name="naive_output")([b1, b2, b3, b4])


def module_model(build):
    inputs = keras.Input(SHAPE)
    return keras.Model(inputs, build(inputs))


naive = module_model(lambda x: naive_module(x, ROW))
reduced = module_model(lambda x: googlenet.inception_module(x, ROW, googlenet.PAPER_STYLE))
rows = {}
for label, model in (("naive", naive), ("with 1x1 reductions", reduced)):
    rows[label] = (model.count_params(), flops(model), model.output_shape[-1])
    print(f"{label:>20}: {rows[label][0]:>9,} parameters, {rows[label][1] / 1e6:8.1f} MFLOPs, "
          f"{rows[label][2]} output channels")
print(f"the reductions divide the parameters by {rows['naive'][0] / rows['with 1x1 reductions'][0]:.2f} "
      f"and the FLOPs by {rows['naive'][1] / rows['with 1x1 reductions'][1]:.2f}")

# %% [markdown]
# The naive module is both larger and *wider at its output* (the pooled branch keeps all
# 192 input channels), so stacking it makes every following module more expensive still.
# The pool projection caps that: the reduced module's output width is its table row's.
# Where does the saving come from? The 5x5 branch, counted on its own:

# %%
def branch(kernel, reduce):
    inputs = keras.Input(SHAPE)
    x = inputs
    if reduce:
        x = keras.layers.Conv2D(reduce, 1, use_bias=False)(x)
    x = keras.layers.Conv2D(ROW.conv5x5, kernel, padding="same", use_bias=False)(x)
    return keras.Model(inputs, x)


direct, through = branch(5, 0), branch(5, ROW.reduce5x5)
print(f"5x5 on 192 channels:      {direct.count_params():>7,} weights, {flops(direct) / 1e6:6.1f} MFLOPs")
print(f"1x1 to {ROW.reduce5x5}, then 5x5:      {through.count_params():>7,} weights, "
      f"{flops(through) / 1e6:6.1f} MFLOPs")
assert direct.count_params() == 5 * 5 * 192 * ROW.conv5x5
assert through.count_params() == 192 * ROW.reduce5x5 + 5 * 5 * ROW.reduce5x5 * ROW.conv5x5

# %% [markdown]
# ## Inception v3's factorizations
#
# Inception v3 replaced large kernels by stacks of small ones with the same receptive
# field. Two rules, each measured on a small built layer stack with `C` channels in and out
# (no biases, so the weight counts are exactly the kernels):
#
# - a 5x5 convolution becomes two 3x3 convolutions (receptive field 5x5);
# - an n x n convolution becomes a 1 x n followed by an n x 1 (here n = 7, as in the
#   network's 17x17 modules).

# %%
def stack(size, channels, kernels):
    inputs = keras.Input((size, size, channels))
    x = inputs
    for kernel in kernels:
        x = keras.layers.Conv2D(channels, kernel, padding="same", use_bias=False)(x)
    return keras.Model(inputs, x)


CASES = [
    ("5x5", "two 3x3", 35, 64, [(5, 5)], [(3, 3), (3, 3)]),
    ("7x7", "1x7 + 7x1", 17, 192, [(7, 7)], [(1, 7), (7, 1)]),
]
for big_name, small_name, size, channels, big, small in CASES:
    one, factorized = stack(size, channels, big), stack(size, channels, small)
    w1, w2 = one.count_params(), factorized.count_params()
    f1, f2 = flops(one), flops(factorized)
    print(f"{size}x{size}x{channels}: {big_name} {w1:,} weights, {f1 / 1e6:.1f} MFLOPs -> "
          f"{small_name} {w2:,} weights, {f2 / 1e6:.1f} MFLOPs "
          f"(weights x{w2 / w1:.3f}, FLOPs x{f2 / f1:.3f})")
    kernel_area = sum(k[0] * k[1] for k in small) / (big[0][0] * big[0][1])
    assert w2 / w1 == kernel_area  # 18/25 and 14/49: the ratio of the kernels' areas

# %% [markdown]
# The weight ratio is the ratio of kernel areas (printed as the `weights x` factor), and
# the FLOPs follow it because every layer keeps the map size and the channel count. Both
# factorizations also insert an extra nonlinearity when each layer has its ReLU, which the
# paper argues helps rather than hurts.

# %% [markdown]
# ## GoogLeNet's auxiliary classifiers
#
# GoogLeNet was deep for its time; to get a useful gradient into the middle of it, the
# paper attached two small classifiers to modules 4a and 4d during training: average
# pooling to 4x4, a 1x1 convolution with 128 filters, a 1024-unit dense layer, dropout 0.7
# and a softmax. kerasarch builds them only with `aux_logits=True`; the model then has
# three outputs.

# %%
model = kerasarch.googlenet(aux_logits=True, input_shape=(AUX_SIZE, AUX_SIZE, 3), classes=10)
plain = kerasarch.googlenet(input_shape=(AUX_SIZE, AUX_SIZE, 3), classes=10)
print("outputs:", model.output_names, [tuple(o.shape) for o in model.outputs])
sources = {layer.output.name: layer.name for layer in model.layers}
print("attached to:", [sources[model.get_layer(f"{a}_pool").input.name] for a in ("aux1", "aux2")])
for layer in model.layers:
    if layer.name.startswith("aux1_"):
        config = layer.get_config()
        print(f"  {layer.name}:", {k: config[k] for k in ("output_size", "filters", "kernel_size",
                                                         "units", "rate") if k in config})
print(f"parameters: {plain.count_params():,} without the auxiliary heads, "
      f"{model.count_params():,} with them")

# %% [markdown]
# Training minimizes the main loss plus 0.3 times each auxiliary loss. `kerasarch train`
# compiles exactly that with Keras' `loss_weights`, and measures accuracy on the main
# output only:

# %%
compiled = model_setup.objective(model, classes=10)
print("loss weights:", compiled["loss_weights"])
model.compile(optimizer="sgd", **compiled)
rng = np.random.default_rng(0)
images = rng.uniform(0, 255, (8, AUX_SIZE, AUX_SIZE, 3)).astype("float32")
labels = keras.utils.to_categorical(rng.integers(0, 10, 8), 10)
outputs = model(images, training=False)
losses = [float(np.mean(keras.losses.categorical_crossentropy(labels, o))) for o in outputs]
batch = model_setup.fit_targets(model, tf.data.Dataset.from_tensors((images, labels)))
result = model.evaluate(batch, verbose=0, return_dict=True)
print("per-output losses:", [round(v, 4) for v in losses])
print(f"main + 0.3 x (aux1 + aux2) = {losses[0] + 0.3 * (losses[1] + losses[2]):.4f}; "
      f"Keras' total loss = {result['loss']:.4f}")
assert abs(result["loss"] - (losses[0] + 0.3 * (losses[1] + losses[2]))) < 1e-3

# %% [markdown]
# At inference the auxiliary heads are dead weight: `kerasarch export`, `predict` and
# `evaluate` keep the main output only (`heads.main_output`), over the same layers and
# weights.

# %%
served = heads.main_output(model)
print("served outputs:", served.output_names, "same probabilities:",
      np.allclose(served(images, training=False), outputs[0]))

# %%
print(f"lesson ran in {time.perf_counter() - START:.0f} s")
