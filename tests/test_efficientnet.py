"""EfficientNet: the official files' normalization, compound scaling, FLOPs ~ 2**phi, L2's size.

The registry suite (tests/test_models.py) covers every variant's contract; this module
covers what it cannot see: the `weights="imagenet"` situation of keras.applications (a
normalization correction that exists only in that graph), the compound scaling rule and
its FLOPs, the published coefficient table and the parameter count of L2 (which the
suite pins on its one build, from timm's figure).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import analysis, layers
from kerasarch.models import efficientnet as eff
from kerasarch.models.efficientnet_scaling import scaled_config

from conftest import forward, raw_images
from legacy_h5 import save_legacy_weights

# What keras.applications' EfficientNet files hold in their `normalization` layer: the
# ImageNet mean, and the standard deviations in the *variance* slot (tensorflow/tensorflow
# #49930); keras corrects for it with an extra Rescaling(1 / sqrt(std)) when
# weights="imagenet".
FILE_MEAN = np.array([0.485, 0.456, 0.406], "float32")
FILE_VARIANCE = np.array([0.229, 0.224, 0.225], "float32")


def relative_max_difference(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _imagenet_style_file(twin, path) -> None:
    """A keras.applications model with random weights written as the official file is.

    Its `normalization` layer holds the official values, and the BatchNorm statistics are
    random (not 0 and 1), so epsilon and momentum conventions matter.
    """
    keras.backend.clear_session()  # the file's layer is then `normalization`, as published
    keras.utils.set_random_seed(0)
    donor = twin(weights=None, classifier_activation=None)
    rng = np.random.default_rng(0)
    for layer in donor.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, _, _ = layer.get_weights()
            channels = gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, channels).astype("float32"), beta,
                rng.normal(0.0, 0.2, channels).astype("float32"),
                rng.uniform(0.5, 2.0, channels).astype("float32"),
            ])
    donor.get_layer("normalization").set_weights([FILE_MEAN, FILE_VARIANCE, np.int64(0)])
    save_legacy_weights(donor, path)


def _keras_imagenet_model(twin, path, monkeypatch):
    """keras.applications' model exactly as `weights="imagenet"` builds it, with `path` loaded.

    The download is replaced by the file written here; everything else (the Rescaling
    correction, loading by layer order) is keras' own code.
    """
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(path))
    return twin(weights="imagenet", classifier_activation=None)


def _stem_and_predictions(model, images):
    """The first activations (right after the normalization) and the logits of `model`."""
    probe = keras.Model(model.inputs, [model.get_layer("stem_activation").output, model.output])
    return forward(probe, images)


def image_dependent(outputs):
    """What varies from image to image: the outputs less their mean over the batch.

    With random weights a deep network's logits hardly depend on the image (EfficientNet-B0:
    the part that does is ~1e-4 of the largest logit), so a relative difference of the raw
    logits below 1e-4 is met even with a wrong normalization; this part is not.
    """
    return outputs - outputs.mean(axis=0, keepdims=True)


@pytest.mark.parametrize("variant", ["b0", "b3"])
def test_official_files_give_keras_imagenet_predictions(variant, tmp_path, monkeypatch):
    twin = getattr(keras.applications, f"EfficientNet{variant.upper()}")
    path = tmp_path / f"efficientnet{variant}.h5"
    _imagenet_style_file(twin, path)
    reference = _keras_imagenet_model(twin, path, monkeypatch)
    assert any(isinstance(layer, keras.layers.Rescaling) and layer.name != "rescaling"
               for layer in reference.layers)  # keras' imagenet-only correction is there
    size = kerasarch.model_info(f"efficientnet_{variant}").input_shape
    images = raw_images(size, count=4)  # real photos at the native size
    stem, expected = _stem_and_predictions(reference, images.astype("float32"))
    model = kerasarch.get_model(f"efficientnet_{variant}", weights=path, classifier_activation=None)
    actual_stem, actual = _stem_and_predictions(model, images)
    assert relative_max_difference(actual, expected) < 1e-4
    assert relative_max_difference(actual_stem, stem) < 1e-4
    assert relative_max_difference(image_dependent(actual), image_dependent(expected)) < 1e-2
    if variant == "b0":
        # keras' graph without the correction (weights=None or a path) normalizes
        # differently, and the checks above see it: measured 0.57 at the stem and 0.64 on
        # the image-dependent logits (float32 noise between equal graphs: ~2e-3).
        keras.backend.clear_session()
        wrong_stem, wrong = _stem_and_predictions(
            twin(weights=str(path), classifier_activation=None), images.astype("float32")
        )
        assert relative_max_difference(wrong_stem, stem) > 0.1
        assert relative_max_difference(image_dependent(wrong), image_dependent(expected)) > 0.1
        # kerasarch's graph is the same with or without the file (DESIGN.md section 1).
        plain = kerasarch.efficientnet_b0(classifier_activation=None)
        assert [(type(a), a.name) for a in plain.layers] == [(type(a), a.name) for a in model.layers]


# --- compound scaling -------------------------------------------------------------------------


@pytest.mark.parametrize("phi", [0, 1, 2, 0.5, 3.7])
def test_compound_scaling_is_the_papers_rule(phi):
    depth, width, resolution = kerasarch.compound_scaling(phi)
    assert (depth, width, resolution) == pytest.approx((1.2**phi, 1.1**phi, 1.15**phi))
    assert depth * width**2 * resolution**2 == pytest.approx(1.92027**phi, rel=1e-5)


def test_beta_is_1_1_because_a_step_of_phi_should_about_double_the_flops():
    assert 1.2 * 1.1**2 * 1.15**2 == pytest.approx(1.92, abs=0.005)  # the paper's values
    assert 1.2 * 1.2**2 * 1.15**2 == pytest.approx(2.29, abs=0.005)  # the misprinted copy
    assert kerasarch.compound_scaling(1)[1] == 1.1


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "1", None, True, [1]])
def test_bad_phi_is_refused(bad):
    with pytest.raises(ValueError, match=r"argument `phi`: .*finite number >= 0"):
        kerasarch.compound_scaling(bad)
    with pytest.raises(ValueError, match=r"argument `phi`"):
        kerasarch.efficientnet(bad)


def test_bad_bases_and_rates_are_refused():
    with pytest.raises(ValueError, match=r"argument `beta`: 0.9"):
        kerasarch.compound_scaling(1, beta=0.9)
    with pytest.raises(ValueError, match=r"argument `drop_connect_rate`: 1.0"):
        kerasarch.efficientnet_b0(drop_connect_rate=1.0)
    with pytest.raises(ValueError, match=r"argument `weights`: 'imagenet'"):
        kerasarch.efficientnet(1, weights="imagenet")


def test_phi_0_is_b0_and_fractions_give_a_rounded_resolution():
    b0 = kerasarch.efficientnet_b0(include_top=False)
    phi0 = kerasarch.efficientnet(0, include_top=False)
    assert [layer.name for layer in phi0.layers] == [layer.name for layer in b0.layers]
    assert phi0.count_params() == b0.count_params() and phi0.input_shape == (None, 224, 224, 3)
    for phi in (0.5, 1, 2.25):
        expected = 8 * round(224 * 1.15**phi / 8)
        assert scaled_config(phi).resolution == expected and expected % 8 == 0
    model = kerasarch.efficientnet(0.5, include_top=False)
    assert model.name == "efficientnet_phi0_5" and model.input_shape == (None, 240, 240, 3)


def test_published_coefficients():
    published = {  # (width, depth, resolution, dropout): the paper's reference code, Noisy Student
        "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
        "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
        "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5), "l2": (4.3, 5.3, 800, 0.5),
    }
    for variant, row in published.items():
        config = eff.CONFIGS[f"efficientnet_{variant}"]
        assert (config.width, config.depth, config.resolution, config.dropout) == row
        assert kerasarch.model_info(f"efficientnet_{variant}").input_shape == (row[2], row[2], 3)
    # The published coefficients are not the rule's: the phi each one implies differs.
    implied = {
        v: (math.log(d) / math.log(1.2), math.log(w) / math.log(1.1), math.log(r / 224) / math.log(1.15))
        for v, (w, d, r, _) in published.items() if v != "l2"
    }
    assert implied["b2"][:2] == pytest.approx((1.0, 1.0)) and implied["b2"][2] > 1.05, implied
    assert implied["b7"] == pytest.approx((6.21, 7.27, 7.05), abs=0.01), implied


# FLOPs grow as depth x width**2 x resolution**2 = 1.92**phi by the rule; rounding of
# channels (to multiples of 8), repeats (up) and resolution (to multiples of 8), and the
# layers whose cost does not scale that way, move the measured growth around it.
FLOPS_TOLERANCE = 0.25  # measured / 2**phi within [0.75, 1.25]


def test_flops_grow_by_about_2_to_the_phi():
    measured = {}
    for phi in (0, 1, 2):  # phi=3 (B3's 300 px) would double the test's time
        keras.backend.clear_session()
        measured[phi] = analysis.flops(kerasarch.efficientnet(phi))
    ratios = {phi: measured[phi] / measured[0] for phi in measured}
    report = ", ".join(f"phi={p}: {r:.2f}x (2**phi={2**p})" for p, r in ratios.items())
    report += f"; B0 {measured[0] / 1e9:.2f} GFLOPs"
    for phi, ratio in ratios.items():
        assert abs(ratio / 2**phi - 1) <= FLOPS_TOLERANCE, report
    assert ratios[1] < ratios[2], report


# --- parameter counts ---------------------------------------------------------------------------


def trainable_count(config: eff.EfficientNetConfig, classes: int = 1000) -> int:
    """Trainable parameters of an EfficientNet, counted from the stage table alone.

    Convolutions without bias, BatchNorm scale and offset, squeeze-excitation convolutions
    with biases, the dense head: the arithmetic of the paper's network, independent of the
    Keras graph.
    """
    round_f = lambda f: eff.round_filters(f, config.width)  # noqa: E731
    stem = round_f(eff.STEM_FILTERS)
    total = 3 * 3 * 3 * stem + 2 * stem
    for stage in eff.B0_STAGES:
        out = round_f(stage.filters_out)
        for j in range(eff.round_repeats(stage.repeats, config.depth)):
            inp = round_f(stage.filters_in) if j == 0 else out
            mid = inp * stage.expansion
            if stage.expansion != 1:
                total += inp * mid + 2 * mid
            squeeze = max(1, int(inp * stage.se_ratio))
            total += stage.kernel**2 * mid + 2 * mid
            total += (mid * squeeze + squeeze) + (squeeze * mid + mid)
            total += mid * out + 2 * out
    top = round_f(eff.TOP_FILTERS)
    return total + out * top + 2 * top + top * classes + classes


def test_the_count_from_the_stage_table_matches_the_built_models():
    for variant in ("efficientnet_b0", "efficientnet_b3"):
        model = kerasarch.get_model(variant)
        built = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        pinned = kerasarch.model_info(variant).params.trainable
        assert trainable_count(eff.CONFIGS[variant]) == built == pinned


def test_l2_has_timms_trainable_count():
    # timm 1.0 tf_efficientnet_l2: 480,309,308. The registry suite checks the built model
    # against the same pinned figure on its one build (481M parameters, 1.9 GB).
    assert trainable_count(eff.CONFIGS["efficientnet_l2"]) == 480_309_308
    assert kerasarch.model_info("efficientnet_l2").params.trainable == 480_309_308


# --- squeeze-excitation and stochastic depth ------------------------------------------------------


def test_stochastic_depth_is_named_linear_and_inert_at_inference():
    model = kerasarch.efficientnet(0, input_shape=(32, 32, 3), classes=3, drop_connect_rate=0.2,
                                   dropout_rate=0.0)
    drops = [layer for layer in model.layers if isinstance(layer, layers.StochasticDepth)]
    # B0: 16 blocks, 9 of them residual (those that keep the shape); block i of 16 drops
    # with rate 0.2 * i / 16.
    assert [d.name for d in drops][:2] == ["block2b_drop_path", "block3b_drop_path"]
    assert drops[0].rate == pytest.approx(0.2 * 2 / 16) and drops[-1].rate == pytest.approx(0.2 * 14 / 16)
    assert len(drops) == 9
    assert {"block1a_se_squeeze", "block1a_se_reduce", "block1a_se_expand", "block1a_se_excite"} <= {
        layer.name for layer in model.layers}
    plain = kerasarch.efficientnet(0, input_shape=(32, 32, 3), classes=3, drop_connect_rate=0.0,
                                   dropout_rate=0.0)
    plain.set_weights(model.get_weights())
    images = raw_images((32, 32, 3), count=4).astype("float32")
    np.testing.assert_allclose(model(images, training=False), plain(images, training=False), atol=1e-6)
    trained = [model(images, training=True).numpy() for _ in range(3)]
    assert any(np.abs(t - trained[0]).max() > 1e-6 for t in trained[1:])  # active in training
