"""MobileNet v1/v2/v3: what the registry suite cannot see.

The depthwise-separable saving measured on built layers, the width multiplier's channel
rounding against keras.applications, the errors for bad arguments, the minimalistic
variant, the alpha 0.25 twin, and the official v3 files' Keras 2 layer names.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import download
from kerasarch.analysis import flops
from kerasarch.models import mobilenet_v3
from kerasarch.models.mobilenet import make_divisible

from conftest import forward, raw_images
from legacy_h5 import save_legacy_weights, write_legacy_layers


def relative_max_difference(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("channels_out", [16, 64, 256])
def test_depthwise_separable_costs_one_over_n_plus_one_ninth(channels_out):
    # Built layers, counted by TensorFlow's profiler: a standard 3x3 convolution against a
    # 3x3 depthwise convolution followed by a 1x1 pointwise one, no biases or activations,
    # so the graphs hold nothing but the convolutions. The profiler charges every output
    # position the full kernel (zero padding included), as the paper's formula does, so
    # the ratio is exact up to float rounding; 1e-9 leaves room for that only.
    size, channels_in = 14, 32
    inputs = keras.Input((size, size, channels_in))
    standard = keras.Model(inputs, keras.layers.Conv2D(channels_out, 3, padding="same",
                                                       use_bias=False)(inputs))
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(inputs)
    separable = keras.Model(inputs, keras.layers.Conv2D(channels_out, 1, use_bias=False)(x))
    ratio = flops(separable) / flops(standard)
    assert ratio == pytest.approx(1 / channels_out + 1 / 9, rel=1e-9)
    # The standard convolution is D_K^2 M N D_F^2 multiply-adds (two FLOPs each).
    assert flops(standard) == 2 * 9 * channels_in * channels_out * size * size


def _weight_shapes(model) -> dict[str, list[tuple]]:
    return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers if layer.weights}


@pytest.mark.parametrize(
    ("name", "twin", "kwargs"),
    [
        ("mobilenet", keras.applications.MobileNet, {"alpha": 0.75}),
        ("mobilenet_v2", keras.applications.MobileNetV2, {"alpha": 0.35}),
        ("mobilenet_v2", keras.applications.MobileNetV2, {"alpha": 1.3}),
        ("mobilenet_v3_small", keras.applications.MobileNetV3Small, {"alpha": 0.75}),
    ],
)
def test_alpha_scales_the_channels_as_keras_does(name, twin, kwargs):
    # Every weight of every layer has keras.applications' shape at this width (v2 and v3
    # round to multiples of 8; v2 widens its last convolution only above alpha 1).
    ours = kerasarch.get_model(name, include_top=False, input_shape=(64, 64, 3), **kwargs)
    theirs = twin(weights=None, include_top=False, input_shape=(64, 64, 3), **kwargs)
    assert _weight_shapes(ours) == _weight_shapes(theirs)


def test_make_divisible_rounds_to_multiples_of_8_never_10_percent_below():
    assert make_divisible(32 * 0.35) == 16  # 11.2 rounds to 8, more than 10% below: 16
    assert make_divisible(16 * 0.35) == 8
    assert make_divisible(1280 * 1.3) == 1664
    assert make_divisible(40 * 0.75) == 32
    assert make_divisible(27.9) == 32  # 24 would be more than 10% below 27.9


def test_v1_width_and_depth_multiplier_change_the_layers():
    model = kerasarch.mobilenet(alpha=0.5, depth_multiplier=2, include_top=False,
                                input_shape=(32, 32, 3))
    assert model.get_layer("conv1").filters == 16
    assert model.get_layer("conv_pw_13").filters == 512
    # depth_multiplier 2 doubles the depthwise outputs: 16 channels in, 32 out.
    assert model.get_layer("conv_dw_1").output.shape[-1] == 32


@pytest.mark.parametrize("alpha", [0, -0.5, 5, "1.0", True, None])
def test_bad_alpha_is_refused(alpha):
    for builder in (kerasarch.mobilenet, kerasarch.mobilenet_v2, kerasarch.mobilenet_v3_small):
        with pytest.raises(ValueError, match=r"`alpha`: .*Expected a number in \(0, 4\]"):
            builder(alpha=alpha)


@pytest.mark.parametrize("depth_multiplier", [0, -1, 1.5, True])
def test_bad_depth_multiplier_is_refused(depth_multiplier):
    with pytest.raises(ValueError, match=r"`depth_multiplier`: .*integer >= 1"):
        kerasarch.mobilenet(depth_multiplier=depth_multiplier)


def test_imagenet_with_unpublished_arguments_is_refused_before_any_download():
    with pytest.raises(ValueError, match=r"`alpha`: 0.5 with weights='imagenet'.*path"):
        kerasarch.mobilenet(alpha=0.5, weights="imagenet")
    with pytest.raises(ValueError, match=r"`depth_multiplier`: 2 with weights='imagenet'"):
        kerasarch.mobilenet(depth_multiplier=2, weights="imagenet")
    with pytest.raises(ValueError, match=r"`alpha`: 1.3 with weights='imagenet'"):
        kerasarch.mobilenet_v2(alpha=1.3, weights="imagenet")
    with pytest.raises(ValueError, match=r"`alpha`: 0.75 with minimalistic=True"):
        kerasarch.mobilenet_v3_large(alpha=0.75, minimalistic=True, weights="imagenet")
    with pytest.raises(ValueError, match=r"`minimalistic`: 'yes'"):
        kerasarch.mobilenet_v3_large(minimalistic="yes")
    with pytest.raises(ValueError, match=r"`dropout_rate`: 1.0"):
        kerasarch.mobilenet_v3_small(dropout_rate=1.0)


def _activations(model) -> set[str]:
    return {
        keras.activations.serialize(layer.activation)
        for layer in model.layers if isinstance(layer, keras.layers.Activation)
    }


def test_minimalistic_has_no_squeeze_excitation_no_hard_swish_and_3x3_kernels():
    full = kerasarch.mobilenet_v3_small(input_shape=(64, 64, 3), classes=5)
    assert any("squeeze_excite" in layer.name for layer in full.layers)
    hard = {"hard_swish", "hard_silu", "hard_sigmoid"}  # Keras serializes hard_swish as hard_silu
    assert {"hard_silu", "hard_sigmoid"} <= _activations(full)
    assert {layer.kernel_size for layer in full.layers
            if isinstance(layer, keras.layers.DepthwiseConv2D)} == {(3, 3), (5, 5)}
    minimal = kerasarch.mobilenet_v3_small(minimalistic=True, input_shape=(64, 64, 3), classes=5)
    assert not any("squeeze_excite" in layer.name for layer in minimal.layers)
    assert not hard & _activations(minimal)
    assert {layer.kernel_size for layer in minimal.layers
            if isinstance(layer, keras.layers.DepthwiseConv2D)} == {(3, 3)}


def test_alpha_025_loads_the_keras_applications_format_and_predicts_the_same(tmp_path):
    # The registry's twin suite covers alpha 1.0; the published alpha 0.25 width here.
    keras.utils.set_random_seed(0)
    reference = keras.applications.MobileNet(alpha=0.25, weights=None, classifier_activation=None)
    path = tmp_path / "mobilenet_025_legacy.h5"
    save_legacy_weights(reference, path)
    model = kerasarch.mobilenet_025(weights=path, classifier_activation=None)
    images = raw_images((224, 224, 3), count=2)
    expected = forward(reference, keras.applications.mobilenet.preprocess_input(images.astype("float32")))
    assert relative_max_difference(forward(model, images), expected) < 1e-4


@pytest.fixture(scope="module")
def v3_small_reference():
    keras.utils.set_random_seed(2)
    return keras.applications.MobileNetV3Small(weights=None, classifier_activation=None)


def test_v3_official_keras2_layer_names_load(v3_small_reference, tmp_path):
    # The official files were written by Keras 2 (`expanded_conv_3/squeeze_excite/Conv_1`);
    # write the reference's weights under those names and load them by path.
    layers = {}
    for layer in v3_small_reference.layers:
        if layer.weights:
            layers[mobilenet_v3.keras2_name(layer.name)] = dict(
                zip([w.name for w in layer.weights], layer.get_weights(), strict=True)
            )
    assert {"Conv/BatchNorm", "expanded_conv_3/squeeze_excite/Conv_1", "Logits"} <= set(layers)
    path = tmp_path / "weights_mobilenet_v3_small_keras2_names.h5"
    write_legacy_layers(path, layers)
    model = kerasarch.mobilenet_v3_small(weights=path, classifier_activation=None,
                                         input_shape=(96, 96, 3))
    images = raw_images((96, 96, 3), count=2)
    expected = forward(v3_small_reference, images.astype("float32"))
    assert relative_max_difference(forward(model, images), expected) < 1e-4


def test_v3_imagenet_picks_the_file_of_the_width(tmp_path, monkeypatch):
    # alpha 0.75 is a published file of its own: weights="imagenet" fetches that one.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    keras.utils.set_random_seed(3)
    reference = keras.applications.MobileNetV3Small(alpha=0.75, weights=None, include_top=False)
    official = mobilenet_v3.official_files("small", 0.75, False).notop
    (tmp_path / "models").mkdir()
    cached = tmp_path / "models" / official.filename
    save_legacy_weights(reference, cached)
    assert official.filename == "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5"
    # The test file stands in for the official one: record its own digest.
    digest = download.file_digest(cached, "md5")
    key = "small_224_0.75_float"
    monkeypatch.setitem(mobilenet_v3._HASHES, key, (mobilenet_v3._HASHES[key][0], digest))
    model = kerasarch.mobilenet_v3_small(alpha=0.75, include_top=False, weights="imagenet",
                                         input_shape=(96, 96, 3))
    images = raw_images((96, 96, 3), count=2)
    expected = forward(reference, images.astype("float32"))
    assert relative_max_difference(forward(model, images), expected) < 1e-4
