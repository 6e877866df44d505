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
# # Lesson 13: comparing architectures — accuracy, FLOPs and the clock
#
# The surveys compare CNNs by ImageNet top-1, parameters and FLOPs. This lesson puts every
# registered kerasarch model in one table and one chart, then asks what the FLOP count is
# worth on this machine: it times one model per family at batch 1 and finds that FLOPs do
# not predict CPU latency for the depthwise-separable nets. Last, it runs one model through
# every runtime kerasarch exports to (TensorFlow fp32 and bf16, LiteRT, ONNX Runtime,
# OpenVINO), timed side by side.
#
# The default (quick) mode is what the test suite runs: two models at a small input for the
# latency section and LeNet-5 for the runtime comparison, so it finishes in seconds. With
# `KERASARCH_LESSON_FULL=1` the latency section times eleven families at their native input
# and the runtime comparison runs MobileNet v2; the committed outputs are those of the full
# run. Every number quoted below is printed by the cell above it.

# %%
import os
import time

FULL = os.environ.get("KERASARCH_LESSON_FULL") == "1"
START = time.perf_counter()
REPEATS = 20 if FULL else 5  # timed calls per model after warm-up; the median is kept
print(f"{'full' if FULL else 'quick'} mode: {REPEATS} timed calls per model")

# %%
import tempfile
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from IPython.display import Image, Markdown, display

import kerasarch
from kerasarch import compare_plot, comparison
from kerasarch.analysis import flops
from kerasarch.benchmark import benchmark, format_result
from kerasarch.export.openvino import bf16_supported

# %% [markdown]
# ## 1. Every model in one table and one chart
#
# `kerasarch compare` builds each registered model once, counts its FLOPs with TensorFlow's
# profiler (multiply-adds counted as two, one image at the native input) and keeps the
# measurements in `benchmarks/results/compare.json`, next to the registry's metadata: family,
# year and the published ImageNet top-1 of each weights source, each with its source.
# `comparison.update` re-measures only models missing from that file or changed since, so
# here it measures nothing unless the registry moved on (then it says which it measures).

# %%
data = comparison.update(comparison.load(comparison.RESULTS / "compare.json"), log=print)
table = comparison.rows(data)
print(f"{len(table)} registered models, "
      f"{sum(1 for r in table if r['top1'] != '')} with a published ImageNet top-1")
display(Markdown(comparison.markdown(data)))

# %% [markdown]
# The chart the surveys open with: top-1 against GFLOPs (log scale), bubble area
# proportional to parameters. `compare_plot.bubble_chart` draws it from the same data;
# `kerasarch compare --write-docs` writes it into the README and the docs (a test keeps that
# copy current), so a source checkout shows the committed figure and an installed package
# draws its own.

# %%
png = comparison.FIGURES / "compare.png"
if not png.exists():
    figures = Path(tempfile.mkdtemp())
    png, _ = compare_plot.bubble_chart(data, figures / "compare.png", figures / "compare.svg")
display(Image(filename=str(png)))
print(comparison.caption(data))

# %%
by_name = {r["model"]: r for r in table}
vgg, effnet, resnet = by_name["vgg16"], by_name["efficientnet_b0"], by_name["resnet50"]
print(f"vgg16:           {vgg['gflops']:6.2f} GFLOPs, {vgg['params'] / 1e6:5.1f}M params, "
      f"top-1 {vgg['top1']}")
print(f"resnet50:        {resnet['gflops']:6.2f} GFLOPs, {resnet['params'] / 1e6:5.1f}M params, "
      f"top-1 {resnet['top1']}")
print(f"efficientnet_b0: {effnet['gflops']:6.2f} GFLOPs, {effnet['params'] / 1e6:5.1f}M params, "
      f"top-1 {effnet['top1']}")
print(f"efficientnet_b0 vs vgg16: {vgg['gflops'] / effnet['gflops']:.0f}x fewer FLOPs, "
      f"{vgg['params'] / effnet['params']:.0f}x fewer parameters, "
      f"{effnet['top1'] - vgg['top1']:+.1f} points of top-1")
assert effnet["top1"] > resnet["top1"] > vgg["top1"]
assert effnet["gflops"] < resnet["gflops"] < vgg["gflops"]

# %% [markdown]
# Ten years of architecture in three rows: VGG-16 spends about 40 times the FLOPs and 26
# times the parameters of EfficientNet-B0 for a lower top-1 (the cell prints the exact
# figures and asserts the ordering). Read the chart with its caption: each bubble is placed
# by its first published figure, which for some models was measured at another input size
# than the one counted (the table says which), and published figures come from different
# training recipes.
#
# ## 2. Parameters, FLOPs and the clock
#
# FLOPs are what a paper can count; latency is what a user waits for. Below, one model per
# family runs one image (batch 1) through a compiled `tf.function`; after warm-up calls the
# median of the timed calls is kept. FLOPs are counted by `kerasarch.analysis.flops` on the
# model that is timed. The last column, milliseconds per GFLOP, says how fast this CPU
# actually runs each architecture's operations: if FLOPs predicted latency, it would be the
# same for every model.

# %%
FAMILIES = {  # one representative per family; True where the blocks are depthwise-separable
    "alexnet": False, "vgg16": False, "googlenet": False, "inception_v3": False,
    "resnet50": False, "densenet121": False, "bit_r50x1": False, "convnext_tiny": False,
    "mobilenet_v2": True, "mobilenet_v3_large": True, "efficientnet_b0": True,
}
if FULL:
    MODELS, IMAGE_SIZE = list(FAMILIES), None  # native input, with the classifier
else:
    FAMILIES = {"resnet18": False, "mobilenet_v2": True}
    MODELS, IMAGE_SIZE = list(FAMILIES), 96
print("models:", ", ".join(MODELS))
print("input:", "each model's native input, with its classifier" if IMAGE_SIZE is None else
      f"{IMAGE_SIZE}x{IMAGE_SIZE} without the classifier (quick mode; the full mode times the native "
      "input of eleven families)")


def latency_ms(model: keras.Model, repeats: int) -> float:
    """Median milliseconds of one batch-1 call, after warm-up."""
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, *model.input_shape[1:])),
                         dtype=tf.float32)
    forward = tf.function(lambda x: model(x, training=False))
    for _ in range(3):  # tracing and the first runs are not timed
        forward(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(images).numpy()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


measured = []
for name in MODELS:
    kwargs = {} if IMAGE_SIZE is None else {
        "include_top": False, "pooling": "avg", "input_shape": (IMAGE_SIZE, IMAGE_SIZE, 3)}
    model = kerasarch.get_model(name, **kwargs)
    count = flops(model)
    if IMAGE_SIZE is None:  # the same profiler count as the comparison table's
        assert count == data["models"][name]["flops"], name
    measured.append({"model": name, "depthwise": FAMILIES[name], "params": model.count_params(),
                     "gflops": count / 1e9, "ms": latency_ms(model, REPEATS)})
    del model
    keras.backend.clear_session()

print(f"{'model':20} {'depthwise':>9} {'params':>12} {'GFLOPs':>7} {'ms':>7} {'ms/GFLOP':>9}")
for r in sorted(measured, key=lambda r: r["gflops"]):
    r["ms_per_gflop"] = r["ms"] / r["gflops"]
    print(f"{r['model']:20} {'yes' if r['depthwise'] else 'no':>9} {r['params']:12,d} "
          f"{r['gflops']:7.3f} {r['ms']:7.1f} {r['ms_per_gflop']:9.1f}")

dense = [r["ms_per_gflop"] for r in measured if not r["depthwise"]]
separable = [r["ms_per_gflop"] for r in measured if r["depthwise"]]
print(f"\nms per GFLOP, dense-convolution models:      {min(dense):6.1f} to {max(dense):6.1f} "
      f"(median {np.median(dense):.1f})")
print(f"ms per GFLOP, depthwise-separable models:    {min(separable):6.1f} to {max(separable):6.1f} "
      f"(median {np.median(separable):.1f})")
print(f"median depthwise-separable over median dense: {np.median(separable) / np.median(dense):.1f}x")
assert min(separable) > np.median(dense)  # every depthwise-separable net is slower per FLOP
assert np.median(separable) > 1.5 * np.median(dense)
if FULL:  # the claims the next paragraphs make about particular models
    by_model = {r["model"]: r for r in measured}
    alexnet, resnet50 = by_model["alexnet"], by_model["resnet50"]
    print(f"alexnet: {alexnet['params'] / resnet50['params']:.1f}x resnet50's parameters, "
          f"{resnet50['ms'] / alexnet['ms']:.1f}x its speed")
    assert alexnet["params"] > 2 * resnet50["params"] and alexnet["ms"] < resnet50["ms"]
    bit = by_model["bit_r50x1"]
    print(f"bit_r50x1: {bit['gflops'] / resnet50['gflops']:.2f}x resnet50's FLOPs, "
          f"{bit['ms'] / resnet50['ms']:.2f}x its time")
    assert bit["gflops"] < 1.1 * resnet50["gflops"] and bit["ms"] > 1.35 * resnet50["ms"]

# %% [markdown]
# The same figures on log-log axes. A model on the dashed line runs its FLOPs at the median
# rate of the dense-convolution models; a model above it is slower than its FLOPs predict.

# %%
fig, ax = plt.subplots(figsize=(7.5, 5))
for r in measured:
    ax.scatter(r["gflops"], r["ms"], s=max(r["params"] / 2e5, 15), alpha=0.6,
               color="tab:red" if r["depthwise"] else "tab:blue", edgecolors="0.2", linewidths=0.5)
    ax.annotate(r["model"], (r["gflops"], r["ms"]), fontsize=8, xytext=(4, 3),
                textcoords="offset points")
xs = np.geomspace(min(r["gflops"] for r in measured) / 1.5, max(r["gflops"] for r in measured) * 1.5)
ax.plot(xs, xs * np.median(dense), "--", color="0.5", label=f"{np.median(dense):.0f} ms per GFLOP")
ax.scatter([], [], color="tab:blue", label="dense convolutions")
ax.scatter([], [], color="tab:red", label="depthwise-separable")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("GFLOPs per image (log)")
ax.set_ylabel("ms per image at batch 1 on this CPU (log)")
ax.set_title("FLOPs vs measured latency; bubble area ~ parameters", fontsize=10)
ax.grid(True, which="both", alpha=0.25)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The depthwise-separable nets (MobileNet v2 and v3, EfficientNet-B0) sit above the line:
# each spends more milliseconds per GFLOP than the median dense-convolution model, and their
# median is well above the dense models' median (the cell above prints the ratio, about two
# to three in the full runs tried, and asserts more than 1.5). They are still among the
# fastest models in absolute terms, but by less than their FLOP counts promise: compare a
# MobileNet's FLOPs and milliseconds with ResNet-50's in the table. Single timings on a
# shared machine move by tens of percent from run to run, which is why the claims rest on
# the groups' medians. The dense group is not uniform either: BiT-R50x1 has ResNet-50's layout and about
# its FLOPs, yet takes well over a third longer (printed and asserted above), since its
# group normalization and weight standardization are elementwise work that the FLOP count
# barely weighs. ConvNeXt-T is counted as dense here: it has depthwise 7x7 convolutions, but
# most of its FLOPs are in its wide 1x1 layers.
#
# Parameters predict latency even less: in the full run AlexNet has more than twice
# ResNet-50's parameters and still runs faster (the ratio is printed and asserted above).
# Most of its parameters are in dense layers, which at batch 1 read each weight once for two
# FLOPs.
#
# Why? A dense convolution reuses each weight at every pixel and each input value in every
# output channel, so a CPU's matrix-multiply kernels keep their vector units busy from cache.
# A depthwise 3x3 convolution does 9 multiply-adds per input value and then moves on: its
# **arithmetic intensity** (FLOPs per byte moved) is tiny, so it waits on memory rather than
# on arithmetic. The block below measures one of each on the same feature map, a MobileNet v2
# stage (56x56, 144 channels), and prints both intensities (FLOPs over the bytes of input,
# output and weights, each read or written once).

# %%
def conv_rate(layer: keras.layers.Layer, shape=(56, 56, 144), repeats: int = 10) -> tuple[float, float]:
    """(GFLOP/s measured, FLOPs per byte) of one layer on one float32 feature map."""
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    count = flops(model)
    moved = 4 * (np.prod(shape) + np.prod(model.output_shape[1:]) + model.count_params())
    return count / (latency_ms(model, repeats) / 1e3) / 1e9, count / moved


depthwise_rate, depthwise_intensity = conv_rate(
    keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False))
pointwise_rate, pointwise_intensity = conv_rate(keras.layers.Conv2D(144, 1, use_bias=False))
print(f"depthwise 3x3: {depthwise_intensity:5.1f} FLOPs per byte, {depthwise_rate:6.1f} GFLOP/s")
print(f"pointwise 1x1: {pointwise_intensity:5.1f} FLOPs per byte, {pointwise_rate:6.1f} GFLOP/s")
print(f"pointwise runs {pointwise_rate / depthwise_rate:.1f}x more FLOPs per second")
assert pointwise_rate > depthwise_rate and pointwise_intensity > depthwise_intensity

# %% [markdown]
# The depthwise layer does about 2 FLOPs per byte, the pointwise one about 35, and the
# measured rates follow: the pointwise convolution runs many times more FLOPs per second
# (the cell prints the ratio and asserts the direction). A MobileNet moves most of its bytes
# through layers like the first and most of its FLOPs through layers like the second, and
# the FLOP count weighs both the same. Squeeze-and-excitation, hard-swish and the many
# small layers add per-layer overhead that FLOP counts barely see. On a phone with tuned
# depthwise kernels, or on an accelerator, the picture differs: measure on the machine you
# deploy to.
#
# ## 3. One model, every runtime
#
# `kerasarch.benchmark.benchmark` exports the model to each runtime and times all of them
# in one process, interleaved round by round with their order rotated, beside the model's
# keras.applications twin where it has one; figures are ratios within a round, median and
# [min-max] over rounds, with images/s and model FLOP utilization (MFU, against a matrix
# product timed in the same rounds) beside them. The quick mode benchmarks LeNet-5 for two
# rounds (small enough that converting it to every runtime takes seconds); the full mode
# benchmarks MobileNet v2 for five, then TensorFlow in mixed bfloat16 in a second run (in
# quick mode one run holds both, since LeNet-5 has no twin and its fp32 TensorFlow model is
# the reference).

# %%
if FULL:  # every runtime in fp32, then TensorFlow in bf16 beside the fp32 twin
    BENCH_MODEL, ROUNDS, TARGET, RUNS = "mobilenet_v2", 5, 0.3, [("fp32", "all"), ("bf16", "tf")]
else:  # one run: TensorFlow bf16 beside its fp32 reference, the other runtimes in fp32
    BENCH_MODEL, ROUNDS, TARGET, RUNS = "lenet5", 2, 0.05, [("bf16", "all")]
results = []
for precision, runtime in RUNS:
    results.append(benchmark(BENCH_MODEL, batch_size=1, precision=precision, runtime=runtime,
                             rounds=ROUNDS, target_seconds=TARGET, progress=False))
    print(format_result(results[-1]), end="\n\n")

# %%
result = next(r for r in results if r.runtime == "all")
winner = result.row(result.fastest)
print(f"kerasarch runtimes over {result.reference}, fastest first (median over rounds):")
rows = [r for res in results for r in res.rows if r.role == "kerasarch" and r.kind == "inference"]
for r in sorted(rows, key=lambda r: -r.ratio.median):
    print(f"  {r.runtime:9} {r.precision}  {r.ratio.format(2, 'x'):20} {r.rate.median:9.1f} images/s")
print(f"fastest here for {BENCH_MODEL} at batch 1: {winner.runtime} ({winner.precision})")
tf_bf16 = next(r for r in rows if r.runtime == "tf" and r.precision == "bf16")
print(f"tf bf16 over {result.reference}: {tf_bf16.ratio.format(2, 'x')}; "
      f"bf16 instructions on this CPU (as OpenVINO sees them): {bf16_supported()}")

# %% [markdown]
# The last line names the runtime that won on this machine, and the table above gives its
# ratio with the spread over rounds. In the full run committed with this notebook, LiteRT
# (its XNNPACK CPU kernels) won for MobileNet v2 at batch 1, well ahead of the
# keras.applications twin (the ratio is printed above); which runtime wins depends on
# the model, the batch size and the CPU, which is why `kerasarch benchmark MODEL --runtime
# all` prints the recommendation for the machine it runs on. Mixed bfloat16 was slower
# than fp32 here, for kerasarch and the twin alike: it only pays where the CPU computes in
# bfloat16 (AVX-512 BF16 or AMX), and this CPU does not (the last line printed says so).
# `benchmarks/inference.py` runs the full table (several models, batch 1 and 16, every
# runtime and precision) and commits it under `benchmarks/results/`.

# %%
if FULL:  # what the paragraph above says of the full run
    assert winner.runtime == "litert" and winner.ratio.median > 1.3
    assert tf_bf16.ratio.median < 1 and not bf16_supported()
    twins_bf16 = [r for res in results for r in res.rows
                  if r.role == "peer" and r.kind == "inference" and r.precision == "bf16"]
    assert twins_bf16 and all(r.ratio.median < 1 for r in twins_bf16)
print(f"lesson run time: {time.perf_counter() - START:.0f} s ({'full' if FULL else 'quick'} mode)")
