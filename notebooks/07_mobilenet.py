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
# # Lesson 7: MobileNet and what a multiply-add costs
#
# MobileNet (Howard et al., 2017) replaces each 3x3 convolution by a *depthwise* 3x3
# convolution (one filter per input channel) and a *pointwise* 1x1 convolution that mixes
# channels. The paper's claim is that this costs `1/N + 1/9` of the standard convolution's
# multiply-adds (N output channels, 3x3 kernels), and that two knobs, the width multiplier
# `alpha` and the input resolution, trade accuracy for cost smoothly.
#
# This lesson measures all three on built Keras layers with TensorFlow's profiler
# (`kerasarch.analysis.flops`), then times MobileNet v1, v2 and v3, EfficientNet-B0 and
# ResNet-50 at batch 1 on this machine, which is where FLOPs and speed part ways.
#
# The default (quick) mode is what the test suite runs: fewer timed calls. With
# `KERASARCH_LESSON_FULL=1` the timings take more repetitions; every number quoted below is
# printed by the cell above it.

# %%
import os
import time

FULL = os.environ.get("KERASARCH_LESSON_FULL") == "1"
START = time.perf_counter()
REPEATS = 30 if FULL else 5  # timed calls per model (after warm-up); the median is kept
print(f"{'full' if FULL else 'quick'} mode: {REPEATS} timed calls per model")

# %%
import keras
import numpy as np
import tensorflow as tf

import kerasarch
from kerasarch.analysis import flops

# %% [markdown]
# ## The depthwise-separable saving, measured
#
# A standard 3x3 convolution from M to N channels on a D x D map costs `9 M N D^2`
# multiply-adds. The separable version costs `9 M D^2` (depthwise) plus `M N D^2`
# (pointwise), a ratio of `1/N + 1/9`. Below, each is a one-layer Keras model and the
# profiler counts what TensorFlow would run (no biases, no activations, so nothing else
# is in the graph). The profiler reports FLOPs, two per multiply-add; the ratio is the same.

# %%
def separable_ratio(channels_in: int, channels_out: int, size: int = 14) -> tuple[int, int]:
    inputs = keras.Input((size, size, channels_in))
    standard = keras.Model(
        inputs, keras.layers.Conv2D(channels_out, 3, padding="same", use_bias=False)(inputs)
    )
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(inputs)
    separable = keras.Model(inputs, keras.layers.Conv2D(channels_out, 1, use_bias=False)(x))
    return flops(standard), flops(separable)


print(f"{'M':>5} {'N':>5} {'standard MFLOPs':>16} {'separable':>10} {'measured':>9} {'1/N+1/9':>8}")
for m, n in [(32, 64), (128, 128), (512, 512), (1024, 1024)]:
    std, sep = separable_ratio(m, n)
    print(f"{m:5d} {n:5d} {std / 1e6:16.1f} {sep / 1e6:10.1f} {sep / std:9.4f} {1 / n + 1 / 9:8.4f}")
    assert abs(sep / std - (1 / n + 1 / 9)) < 1e-9  # the profiler counts exactly the formula

# %% [markdown]
# The measured and predicted columns agree to the printed digit (the cell asserts it):
# for wide layers the saving approaches the 3x3 kernel's factor of 9, since `1/N` vanishes.
#
# ## Width multiplier and resolution
#
# `alpha` multiplies every layer's channels. Since a pointwise convolution's cost is the
# product of its input and output channels, cost should fall roughly as `alpha^2`; the
# parameters too (the first convolution and the depthwise layers scale only linearly, and
# the classifier's output width stays 1000). Resolution multiplies the map size and leaves
# the parameters alone, so cost should scale as the square of the resolution ratio.

# %%
base = kerasarch.mobilenet()
base_flops, base_params = flops(base), base.count_params()
print(f"{'alpha':>5} {'params':>10} {'/ alpha 1':>9} {'GFLOPs':>7} {'/ alpha 1':>9} {'alpha^2':>7}")
for alpha in (0.25, 0.5, 0.75, 1.0):
    model = base if alpha == 1.0 else kerasarch.mobilenet(alpha=alpha)
    f, p = flops(model), model.count_params()
    print(f"{alpha:5.2f} {p:10,d} {p / base_params:9.3f} {f / 1e9:7.3f} {f / base_flops:9.3f} "
          f"{alpha ** 2:7.3f}")
    del model

# %% [markdown]
# The FLOP ratio follows `alpha^2` and stays a little above it at small widths (the stem
# reads 3 input channels whatever `alpha` is); the parameter ratio stays further above it
# because the 1000-way classifier does not shrink with `alpha`.
#
# Now resolution, with alpha 1: one backbone with a flexible input size, counted at the
# paper's four sizes.

# %%
backbone = kerasarch.mobilenet(include_top=False, input_shape=(None, None, 3), pooling="avg")
at_224 = flops(backbone, image_size=224)
print(f"{'size':>5} {'GFLOPs':>7} {'/ 224':>6} {'(size/224)^2':>12}  params {backbone.count_params():,} at every size")
for size in (128, 160, 192, 224):
    f = flops(backbone, image_size=size)
    print(f"{size:5d} {f / 1e9:7.3f} {f / at_224:6.3f} {(size / 224) ** 2:12.3f}")

# %% [markdown]
# Cost follows the square of the resolution while the parameters do not move. The
# published Keras weights exist for every alpha at each of these four sizes
# (`mobilenet_{alpha}_{size}_tf.h5`); kerasarch declares the alpha 1.0, 224 file, and
# loads the others by path (`weights="mobilenet_5_0_160_tf.h5"`).
#
# ## Latency on this machine, batch 1
#
# FLOPs are a proxy. Below, each model runs one image at its native size through a
# compiled `tf.function`; after warm-up calls, the median of several timed calls is kept.
# The last column divides the time by the FLOPs: how fast this CPU actually runs each
# architecture's operations.

# %%
MODELS = ("mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
          "efficientnet_b0", "resnet50")


def latency_ms(model: keras.Model, repeats: int) -> float:
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, *model.input_shape[1:])),
                         dtype=tf.float32)
    forward = tf.function(lambda x: model(x, training=False))
    for _ in range(3):  # warm-up: tracing and the first runs
        forward(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(images).numpy()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


rows = []
for name in MODELS:
    model = kerasarch.get_model(name)
    f = flops(model)
    ms = latency_ms(model, REPEATS)
    rows.append((name, model.count_params(), f, ms))
    del model
    keras.backend.clear_session()

print(f"{'model':20} {'params':>11} {'GFLOPs':>7} {'ms':>7} {'ms per GFLOP':>12}")
for name, p, f, ms in rows:
    print(f"{name:20} {p:11,d} {f / 1e9:7.3f} {ms:7.1f} {ms / (f / 1e9):12.1f}")
reference = next(r for r in rows if r[0] == "resnet50")
print()
for name, _, f, ms in rows:
    if name != "resnet50":
        print(f"{name:20} {reference[2] / f:5.1f}x fewer FLOPs than resnet50, "
              f"{reference[3] / ms:5.1f}x its speed")
print("most FLOPs per millisecond:", min(rows, key=lambda r: r[3] / r[2])[0])

# %% [markdown]
# The FLOP ratio and the speed ratio differ: a MobileNet is faster than ResNet-50 by less
# than its FLOP count promises (compare the two columns the cell prints), and the model
# that runs the most FLOPs per millisecond is named on the last line. Dense 3x3 and 1x1
# convolutions are the operations CPU libraries are best at. A depthwise convolution does
# little arithmetic per byte it reads, and CPU depthwise kernels are not as fast as their
# FLOP count suggests; v3's squeeze-excitation and hard-swish add elementwise work that
# FLOP counts barely see. On a phone with tuned depthwise kernels (the paper's setting),
# the gap closes. Timings on a shared machine are noisy: the full mode takes more calls.

# %%
print(f"lesson run time: {time.perf_counter() - START:.0f} s ({'full' if FULL else 'quick'} mode)")
