"""Compound scaling (Tan and Le, 2019): EfficientNet for any compound coefficient `phi`.

The paper scales B0 with one coefficient: depth `alpha**phi`, width `beta**phi`,
resolution `gamma**phi`, where `alpha * beta**2 * gamma**2 ~ 2` makes each step of `phi`
about double the FLOPs. `compound_scaling` gives the multipliers and `efficientnet` builds
the network they define with the machinery of `kerasarch.models.efficientnet` (the
published B0-B7, whose coefficients were rounded by hand, are registered there).
"""

from __future__ import annotations

import math

import keras

from kerasarch import heads
from kerasarch.models.efficientnet import (
    B0_RESOLUTION,
    DIVISOR,
    FAMILY_DOC,
    EfficientNetConfig,
    build,
)

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # the paper's grid search on B0 (section 4, step 1)


def _check_number(arg: str, value, low: float, valid: str) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < low:
        raise ValueError(f"Invalid value for argument `{arg}`: {value!r}. Expected {valid}.")
    return float(value)


def compound_scaling(phi: float, alpha: float = ALPHA, beta: float = BETA,
                     gamma: float = GAMMA) -> tuple[float, float, float]:
    """The paper's compound scaling rule: depth, width and resolution multipliers for `phi`.

    Depth `alpha**phi`, width `beta**phi`, resolution `gamma**phi`. FLOPs grow as depth x
    width**2 x resolution**2, so each step of `phi` multiplies them by
    `alpha * beta**2 * gamma**2` (1.92 with the paper's values, chosen to be about 2).

    Args:
        phi: The compound coefficient, a finite number >= 0 (fractions included).
        alpha: Depth base (the paper: 1.2).
        beta: Width base (the paper: 1.1; a copy of the rule that circulates says 1.2,
            which would make a step of phi cost 2.29x instead of about 2x).
        gamma: Resolution base (the paper: 1.15).

    Returns:
        `(depth, width, resolution)` multipliers of B0.

    Raises:
        ValueError: If `phi` is not a finite number >= 0, or a base is not a finite
            number >= 1.
    """
    phi = _check_number("phi", phi, 0.0, "a finite number >= 0")
    bases = [_check_number(arg, value, 1.0, "a finite number >= 1")
             for arg, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma))]
    depth, width, resolution = (base ** phi for base in bases)
    return depth, width, resolution


def scaled_config(phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                  dropout: float = 0.2) -> EfficientNetConfig:
    """The scaling `compound_scaling` gives, with B0's 224 scaled and rounded to a multiple of 8."""
    depth, width, resolution = compound_scaling(phi, alpha, beta, gamma)
    size = max(32, DIVISOR * round(B0_RESOLUTION * resolution / DIVISOR))
    return EfficientNetConfig(width=width, depth=depth, resolution=size, dropout=dropout)



PHI_DOC = """\
phi (float): The compound coefficient, a finite number >= 0; 0 is B0.
alpha (float): Depth base of the rule (the paper: 1.2).
beta (float): Width base of the rule (the paper: 1.1).
gamma (float): Resolution base of the rule (the paper: 1.15)."""


@heads.contract_docstring(PHI_DOC + "\n" + FAMILY_DOC)
def efficientnet(phi: float = 0.0, *, include_top=True, weights=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", include_preprocessing=True,
                 augmentation=None, name=None, alpha=ALPHA, beta=BETA, gamma=GAMMA, dropout_rate=0.2,
                 drop_connect_rate=0.2) -> keras.Model:
    """The EfficientNet that the compound scaling rule defines for any `phi` >= 0.

    Depth `alpha**phi`, width `beta**phi` and resolution `gamma**phi` times B0's
    (`compound_scaling`); filters and repeats are rounded as in `efficientnet_b0`, and the
    native resolution is 224 x `gamma**phi` rounded to a multiple of 8 (the rule itself says
    nothing about rounding). `efficientnet(0)` is B0's graph, weight for weight.

    The published B1-B7 do not follow `alpha**phi, beta**phi, gamma**phi`: their
    coefficients (`kerasarch.models.efficientnet.CONFIGS`) were rounded and tuned by hand,
    and each implies a different phi in depth, width and resolution. B1 (depth 1.1, width
    1.0, 240 px) is about phi = 0.5 in depth and resolution but 0 in width; B2 (1.2, 1.1,
    260) is phi = 1 in depth and width, 1.07 in resolution (the rule gives 258); B3 (1.4,
    1.2, 300) is phi = 1.85 / 1.91 / 2.09; B7 (3.1, 2.0, 600) is phi = 6.21 / 7.27 / 7.05:
    the larger models are wider and shallower than the rule. Use `efficientnet_b0` ..
    `efficientnet_b7` for the published networks and their weights.

    Not registered as a model name (it is a family, not one variant): with `phi=0` the
    registry suite covers its graph as `efficientnet_b0`. `weights` takes a file path;
    `"imagenet"` is refused (no file exists for a general `phi`).
    """
    config = scaled_config(phi, alpha, beta, gamma, dropout_rate)
    if weights is not None and str(weights) == "imagenet":
        raise ValueError(
            "Invalid value for argument `weights`: 'imagenet'. efficientnet(phi) has no "
            "published weights; use efficientnet_b0 .. efficientnet_b7 for those, or a path."
        )
    args = dict(locals())
    args["name"] = name or f"efficientnet_phi{phi:g}".replace(".", "_")
    return build("efficientnet_b0", config, args)
