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
# # Lesson 1: LeNet-5, AlexNet and VGG
#
# Three networks, fourteen years apart, that set the pattern every later CNN follows:
# convolutions that look at small neighbourhoods, pooling that trades resolution for
# channels, and a classifier on top. Every model here takes **raw pixels** in `[0, 255]`:
# the normalization its weights expect is a layer inside the graph.

# %%
import os
import time

import keras
import numpy as np

import kerasarch

START = time.perf_counter()
FULL = os.environ.get("KERASARCH_LESSON_FULL") == "1"
EPOCHS = 30 if FULL else 2  # the test suite runs the lessons quickly; the outputs are of the full run

print(kerasarch.list_models())

# %% [markdown]
# ## LeNet-5 (1998)
#
# C1 (6 maps) - S2 - C3 (16 maps) - S4 - C5 (120) - F6 (84) - output. The summary shows
# the paper's feature-map sizes: 28x28, 14x14, 10x10, 5x5, 1x1.

# %%
lenet = kerasarch.lenet5()
lenet.summary()
assert lenet.get_layer("c5").output.shape[1:] == (1, 1, 120)

# %% [markdown]
# ## AlexNet (2012)
#
# Five convolutions and three dense layers, ReLU and dropout: the network that made
# ImageNet classification a deep-learning problem. Almost all of its 61 million
# parameters sit in the first dense layer, `fc6`:

# %%
alexnet = kerasarch.alexnet()
fc6 = alexnet.get_layer("fc6").count_params()
print(f"total {alexnet.count_params():,}; fc6 alone {fc6:,} ({fc6 / alexnet.count_params():.0%})")

# %% [markdown]
# ## VGG (2014): only 3x3 convolutions
#
# VGG replaces large kernels with stacks of 3x3 convolutions. Three stacked 3x3 layers see
# a 7x7 window, like one 7x7 layer, but with C channels in and out they hold
# 3 * (9 C^2) = 27 C^2 weights instead of 49 C^2, and add two more non-linearities.
# Measured on built layers:

# %%
C = 64
stack = keras.Sequential(
    [keras.Input((32, 32, C))]
    + [keras.layers.Conv2D(C, 3, padding="same", use_bias=False) for _ in range(3)]
)
single = keras.Sequential([keras.Input((32, 32, C)), keras.layers.Conv2D(C, 7, padding="same", use_bias=False)])
print(f"three 3x3: {stack.count_params():,} = 27 C^2 = {27 * C * C:,}")
print(f"one 7x7:   {single.count_params():,} = 49 C^2 = {49 * C * C:,}")
assert stack.count_params() == 27 * C * C and single.count_params() == 49 * C * C

# %% [markdown]
# Both see the same 7x7 window: the gradient of one output pixel with respect to the
# input is non-zero exactly on a 7x7 patch.

# %%
import tensorflow as tf


def receptive_field(model):
    x = tf.Variable(tf.random.normal((1, 32, 32, C)))
    with tf.GradientTape() as tape:
        y = model(x)[0, 16, 16, 0]
    grad = tf.reduce_sum(tf.abs(tape.gradient(y, x)), axis=-1)[0].numpy()
    rows, cols = np.nonzero(grad)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


print("three 3x3:", receptive_field(stack), " one 7x7:", receptive_field(single))
assert receptive_field(stack) == receptive_field(single) == (7, 7)

# %% [markdown]
# VGG-16 itself: 13 convolutions in five stages, 138 million parameters, 124 million of
# them in the three dense layers.

# %%
vgg16 = kerasarch.vgg16()
dense = sum(vgg16.get_layer(n).count_params() for n in ("fc1", "fc2", "predictions"))
print(f"VGG-16: {vgg16.count_params():,} parameters, {dense:,} in the dense head")
assert vgg16.count_params() == 138_357_544

# %% [markdown]
# ## Training LeNet-5 on handwritten digits
#
# The `digits` set ships with scikit-learn (1,797 8x8 images), so this runs offline. The
# trainer writes a run folder with the model, a SavedModel, the history and the metrics.
# 30 epochs is what `kerasarch train` runs by default.

# %%
import tempfile

from kerasarch import train

result = train.fit(model="lenet5", dataset="digits", epochs=EPOCHS, verbose=0,
                   run_dir=tempfile.mkdtemp(prefix="lesson1-"))
print(f"{EPOCHS} epochs: test top-1 {result.metrics['test_top1']:.2%} in "
      f"{result.metrics['train_seconds']} s of training")
if FULL:
    assert result.metrics["test_top1"] > 0.95

# %% [markdown]
# The time this notebook took, measured (the committed outputs are of the full run,
# `KERASARCH_LESSON_FULL=1`, on a 2-core CPU machine):

# %%
print(f"{'full' if FULL else 'quick'} mode: {time.perf_counter() - START:.0f} s")
