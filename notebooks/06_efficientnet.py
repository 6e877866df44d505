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
# # Lesson 6: EfficientNet and compound scaling
#
# A network can be made bigger in three ways: deeper (more layers), wider (more channels)
# or fed larger images. Tan and Le (2019) scale all three together with one coefficient
# `phi`: depth `alpha**phi`, width `beta**phi`, resolution `gamma**phi`, with `alpha *
# beta**2 * gamma**2 ~ 2`, so that each step of `phi` about doubles the FLOPs. This
# lesson measures that rule on built networks: the FLOPs of `kerasarch.efficientnet(phi)`,
# single-dimension scaling against compound scaling at equal FLOPs, the published B0-B7
# coefficients beside the rule, and which value of `beta` is the right one.
#
# Nothing here is trained: every figure is counted from a built graph (TensorFlow's
# profiler, `kerasarch.analysis.flops`) or computed from the coefficients. The accuracy
# side of the story (which way of spending FLOPs gives the best network) is the paper's
# experiment; this lesson shows what each way costs and what it builds. The default
# (quick) mode builds a few small networks; `KERASARCH_LESSON_FULL=1` goes to larger
# `phi` and asserts the claims. The committed notebook holds a quick run's outputs.

# %%
import os
import time

FULL = os.environ.get("KERASARCH_LESSON_FULL") == "1"
START = time.perf_counter()
PHIS = (0, 1, 2, 3, 4) if FULL else (0, 1, 2)
print(f"{'full' if FULL else 'quick'} mode: phi in {PHIS}")

# %%
import math

import keras
import matplotlib.pyplot as plt

import kerasarch
from kerasarch import analysis
from kerasarch.models import efficientnet as eff

# %% [markdown]
# ## The rule
#
# `kerasarch.compound_scaling(phi)` returns the depth, width and resolution multipliers of
# B0. FLOPs of a convolutional network grow linearly with depth and quadratically with
# width (both the input and the output channels of a convolution grow) and with
# resolution (both height and width grow), so one step of `phi` multiplies them by
# `alpha * beta**2 * gamma**2`:

# %%
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # the paper's grid search on B0
step = ALPHA * BETA**2 * GAMMA**2
print(f"alpha={ALPHA}, beta={BETA}, gamma={GAMMA}: alpha * beta**2 * gamma**2 = {step:.4f}")
for phi in PHIS:
    depth, width, resolution = kerasarch.compound_scaling(phi)
    print(f"phi={phi}: depth x{depth:.3f}, width x{width:.3f}, resolution x{resolution:.3f} "
          f"({224 * resolution:.0f} px), FLOPs x{depth * width**2 * resolution**2:.2f} by the rule")

# %% [markdown]
# ## Is beta 1.1 or 1.2?
#
# One widely copied summary of the paper prints `beta = 1.2`. The constraint decides it:
# the three bases were searched under `alpha * beta**2 * gamma**2 ~ 2`. With `beta = 1.2`
# the product is far from 2 (a step of `phi` would cost much more than a doubling), with
# `beta = 1.1` it is close:

# %%
for beta in (1.1, 1.2):
    product = ALPHA * beta**2 * GAMMA**2
    print(f"beta={beta}: alpha * beta**2 * gamma**2 = {product:.3f} ({abs(product - 2) / 2:.1%} from 2)")

# %% [markdown]
# So `beta = 1.1` is the paper's value (its section 4 and Table 1 give 1.2, 1.1, 1.15 for
# alpha, beta, gamma), and kerasarch's default.
#
# ## FLOPs ~ 2**phi, measured
#
# `kerasarch.efficientnet(phi)` builds the network the rule defines: filters rounded to
# multiples of 8 (never more than 10% down), repeats rounded up, the resolution rounded to
# a multiple of 8. Its FLOPs are counted by TensorFlow's profiler at the native
# resolution (multiply-adds count as two FLOPs):

# %%
measured = {}
for phi in PHIS:
    keras.backend.clear_session()
    model = kerasarch.efficientnet(phi)
    blocks_built = len([layer for layer in model.layers if layer.name.endswith("project_bn")])
    measured[phi] = (analysis.flops(model), model.count_params(), model.input_shape[1], blocks_built)
base = measured[0][0]
print(f"{'phi':>4} {'input':>6} {'blocks':>6} {'GFLOPs':>8} {'params':>12} {'x B0':>6} {'2**phi':>7} "
      f"{'1.92**phi':>10}")
for phi, (flops, params, size, blocks_built) in measured.items():
    print(f"{phi:>4} {size:>6} {blocks_built:>6} {flops / 1e9:>8.2f} {params:>12,} {flops / base:>6.2f} "
          f"{2**phi:>7} {step**phi:>10.2f}")
    print(f"{'':>11} B0's 16 blocks x {kerasarch.compound_scaling(phi)[0]:.2f} = "
          f"{16 * kerasarch.compound_scaling(phi)[0]:.1f} before rounding each stage up")

# %%
phis = list(measured)
plt.figure(figsize=(5, 3.5))
plt.semilogy(phis, [measured[p][0] / base for p in phis], "o-", label="measured")
plt.semilogy(phis, [2**p for p in phis], "--", label="2**phi")
plt.semilogy(phis, [step**p for p in phis], ":", label=f"{step:.2f}**phi (the rule)")
plt.xlabel("phi")
plt.ylabel("FLOPs / B0's")
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The measured growth is a little above `2**phi`, and so above the rule's `1.92**phi`:
# each stage's repeats are rounded *up*, so the network gets more blocks than `alpha**phi`
# alone gives (the `blocks` column against the line under each row), and channels round
# to multiples of 8. The rule is a budget, met up to this rounding.
#
# ## One dimension at a time, at equal FLOPs
#
# The paper's first observation: scaling any single dimension helps, but its gains fade
# as it grows, and spending the same FLOPs on all three is better. Here are four
# networks with about the FLOPs that compound `phi = 1` measured above, each built with the same
# `efficientnet` function and the bases set to 1 for the dimensions left alone:
#
# - depth only: `alpha = target` (FLOPs linear in depth);
# - width only: `beta = sqrt(target)` (FLOPs quadratic in width);
# - resolution only: B0 at `224 * sqrt(target)` pixels;
# - compound: `phi = 1` with the paper's bases.

# %%
keras.backend.clear_session()
target = measured[1][0] / base  # what compound phi=1 measured, in units of B0's FLOPs
print(f"target: {target:.2f} x B0's FLOPs")
variants = {
    "depth only": dict(alpha=target, beta=1.0, gamma=1.0),
    "width only": dict(alpha=1.0, beta=math.sqrt(target), gamma=1.0),
    "resolution only": dict(alpha=1.0, beta=1.0, gamma=math.sqrt(target)),
    "compound": dict(alpha=ALPHA, beta=BETA, gamma=GAMMA),
}
rows = {}
for label, bases in variants.items():
    keras.backend.clear_session()
    model = kerasarch.efficientnet(1, **bases)
    blocks_built = len([layer for layer in model.layers if layer.name.endswith("project_bn")])
    final = model.get_layer("top_activation").output.shape
    rows[label] = (analysis.flops(model), model.count_params(), model.input_shape[1], blocks_built,
                   final[1], final[3])
print(f"{'':>16} {'GFLOPs':>7} {'x B0':>5} {'params':>11} {'input':>6} {'blocks':>6} {'last map':>9}")
for label, (flops, params, size, blocks_built, side, channels) in rows.items():
    print(f"{label:>16} {flops / 1e9:>7.2f} {flops / base:>5.2f} {params:>11,} {size:>6} "
          f"{blocks_built:>6} {side:>4}x{side}x{channels}")

# %% [markdown]
# At about the same FLOPs (within the rounding, see the `x B0` column) the four networks
# are very different things. Depth alone adds blocks (the `blocks` column) at B0's width
# and input; width alone keeps B0's 16 blocks and widens every layer (the last feature
# map's channels); resolution alone adds no parameter at all: the same B0 weights see
# larger images, and only the feature maps grow. Compound scaling spreads the budget:
# some more blocks, somewhat wider layers, a larger input.
#
# Why is the balanced network better? A larger image needs more layers to cover it (a
# larger receptive field) and more channels to hold its finer patterns; scaling one
# dimension alone leaves the other two as the bottleneck. The paper measures this on
# ImageNet (its Figures 3 and 4); here we only see what each choice builds.
#
# ## The published B0-B7 beside the rule
#
# The released models do not use `alpha**phi, beta**phi, gamma**phi` exactly: their
# coefficients (in `kerasarch.models.efficientnet.CONFIGS`) were rounded and adjusted by
# hand. Inverting the rule shows which `phi` each coefficient corresponds to:

# %%
print(f"{'model':>16} {'width':>6} {'depth':>6} {'size':>5} | phi implied by depth, width, size")
for name, config in eff.CONFIGS.items():
    if name == "efficientnet_l2":
        continue
    implied = (math.log(config.depth) / math.log(ALPHA), math.log(config.width) / math.log(BETA),
               math.log(config.resolution / 224) / math.log(GAMMA))
    print(f"{name:>16} {config.width:>6} {config.depth:>6} {config.resolution:>5} | "
          + "  ".join(f"{p:5.2f}" for p in implied))

# %% [markdown]
# B2 is the rule at `phi = 1` in depth and width (the rule's 258 pixels became 260). From
# B3 on, the published models are wider than their depth implies: B7's width corresponds
# to a larger `phi` than its depth. `kerasarch.efficientnet_b0` .. `efficientnet_b7` are
# the published networks (and load keras.applications' weights);
# `kerasarch.efficientnet(phi)` is the rule itself, for any `phi >= 0`, fractions
# included. EfficientNet-L2 (Noisy Student) goes beyond B7 with width 4.3 and depth 5.3:

# %%
l2 = eff.CONFIGS["efficientnet_l2"]
print(f"L2: width {l2.width}, depth {l2.depth}, {l2.resolution} px; "
      f"{kerasarch.model_info('efficientnet_l2').params.trainable:,} trainable parameters (timm's count)")

# %%
if FULL:
    ratios = {phi: measured[phi][0] / base for phi in PHIS}
    assert all(abs(ratios[p] / 2**p - 1) < 0.25 for p in PHIS), ratios
    assert abs(ALPHA * 1.2**2 * GAMMA**2 - 2) > abs(step - 2)
    flops = [r[0] for r in rows.values()]
    assert max(flops) / min(flops) < 1.3, flops  # equal FLOPs, within rounding
    assert rows["resolution only"][1] == measured[0][1]  # no new parameters
print(f"lesson ran in {time.perf_counter() - START:.0f} s")
