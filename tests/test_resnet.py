"""ResNet-family behaviour beyond the registry suite: BiT's normalization, Weight
Standardization and stochastic depth."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch.layers import StandardizedConv2D, StochasticDepth

from conftest import forward, real_photos

SIZE = 64


@pytest.fixture(scope="module")
def bit():
    return kerasarch.bit_r50x1(input_shape=(SIZE, SIZE, 3), classifier_activation=None)


@pytest.fixture(scope="module")
def batch16():
    rng = np.random.default_rng(0)
    photos = real_photos(SIZE, count=4).astype("float32")
    noise = rng.uniform(0, 255, size=(12, SIZE, SIZE, 3)).astype("float32")
    return np.concatenate([photos, noise])


def _first_alone_and_in_batch(model, images):
    alone = keras.ops.convert_to_numpy(model(images[:1], training=True))
    in_batch = keras.ops.convert_to_numpy(model(images, training=True))
    return alone[0], in_batch[0]


@pytest.fixture(scope="module")
def bit64():
    # float64 compute: in float32, oneDNN reduces a batch of 1 and a batch of 16 in a
    # different order, so each GroupNorm differs by ~6e-7 relative (float32 round-off),
    # which 50 layers grow to ~3e-5 on logits of magnitude ~1. float64 removes round-off
    # and leaves only what the normalization itself does.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        return kerasarch.bit_r50x1(input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    finally:
        keras.config.set_dtype_policy(previous)


def test_bit_output_does_not_depend_on_the_batch(bit64, batch16):
    alone, in_batch = _first_alone_and_in_batch(bit64, batch16)
    np.testing.assert_allclose(alone, in_batch, rtol=0, atol=1e-5)


def test_bit_float32_batch_difference_is_round_off_only(bit, batch16):
    alone, in_batch = _first_alone_and_in_batch(bit, batch16)
    np.testing.assert_allclose(alone, in_batch, rtol=0, atol=1e-4 * np.abs(alone).max())


def test_batchnorm_resnet_does_depend_on_the_batch(batch16):
    # The contrast that gives the test above its meaning: in training mode BatchNorm
    # normalizes with the batch's statistics.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        model = kerasarch.resnet50v2(input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    finally:
        keras.config.set_dtype_policy(previous)
    alone, in_batch = _first_alone_and_in_batch(model, batch16)
    assert np.max(np.abs(alone - in_batch)) > 1e-3


def test_bit_has_no_batchnorm_and_standardizes_every_convolution(bit):
    kinds = {type(layer) for layer in bit.layers}
    assert keras.layers.BatchNormalization not in kinds
    convs = [layer for layer in bit.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(isinstance(layer, StandardizedConv2D) for layer in convs)
    norms = [layer for layer in bit.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert {(layer.groups, layer.epsilon) for layer in norms} == {(32, 1e-5)}


def test_standardized_kernel_has_zero_mean_unit_variance_per_output_channel(bit):
    layer = bit.get_layer("conv3_block1_2_conv")
    raw = keras.ops.convert_to_numpy(layer.kernel)
    # The initializer's kernel is not standardized already, so the check has teeth.
    assert np.abs(raw.std(axis=(0, 1, 2)) - 1).min() > 0.5
    kernel = keras.ops.convert_to_numpy(layer.standardized_kernel())
    flat = kernel.reshape(-1, kernel.shape[-1])
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(flat.var(axis=0), 1.0, rtol=1e-5)


def test_standardized_conv_convolves_with_the_standardized_kernel():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 9, 5)).astype("float32")
    ws = StandardizedConv2D(7, 3, padding="same", use_bias=False)
    out = keras.ops.convert_to_numpy(ws(x))
    plain = keras.layers.Conv2D(7, 3, padding="same", use_bias=False)
    plain.build(x.shape)
    plain.kernel.assign(ws.standardized_kernel())
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(plain(x)), rtol=1e-5, atol=1e-5)
    # and not with the raw kernel
    plain.kernel.assign(ws.kernel)
    assert np.max(np.abs(out - keras.ops.convert_to_numpy(plain(x)))) > 1e-2


def test_standardized_conv_serializes_its_epsilon():
    layer = StandardizedConv2D(4, 1, ws_epsilon=1e-8, name="ws")
    clone = StandardizedConv2D.from_config(layer.get_config())
    assert clone.ws_epsilon == 1e-8 and clone.name == "ws"


def test_stochastic_depth_drops_whole_samples_and_keeps_the_expectation():
    layer = StochasticDepth(0.3, seed=3)
    x = np.ones((4000, 2, 2, 3), "float32")
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = out.reshape(4000, -1)
    # every sample is either dropped whole (0) or kept and scaled by 1 / (1 - rate)
    assert set(np.unique(per_sample.min(axis=1))) <= {0.0, np.float32(1 / 0.7)}
    np.testing.assert_array_equal(per_sample.min(axis=1), per_sample.max(axis=1))
    dropped = np.mean(per_sample[:, 0] == 0)
    assert 0.27 < dropped < 0.33
    assert abs(out.mean() - 1.0) < 0.05
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)


@pytest.mark.parametrize("builder", ["resnet50", "resnet50v2", "bit_r50x1", "resnet18"])
def test_drop_path_is_inert_at_inference_and_active_in_training(builder):
    shape = (SIZE, SIZE, 3)
    plain = kerasarch.get_model(builder, input_shape=shape, classifier_activation=None)
    dropping = kerasarch.get_model(
        builder, input_shape=shape, classifier_activation=None, drop_path_rate=0.5
    )
    drops = [layer for layer in dropping.layers if isinstance(layer, StochasticDepth)]
    blocks = sum(1 for layer in plain.layers if layer.name.endswith(("_add", "_out"))
                 and isinstance(layer, keras.layers.Add))
    # linear rule: the first block has rate 0 (no layer), the last one the full rate
    assert len(drops) == blocks - 1
    assert drops[-1].rate == pytest.approx(0.5) and drops[0].rate < 0.5 / (blocks - 2)
    for layer in plain.layers:  # by name: the extra layers reorder the weight list
        dropping.get_layer(layer.name).set_weights(layer.get_weights())
    images = real_photos(SIZE, count=4)
    np.testing.assert_array_equal(forward(dropping, images), forward(plain, images))
    if builder == "bit_r50x1":  # batch-independent, so training mode compares directly
        trained = keras.ops.convert_to_numpy(dropping(images, training=True))
        reference = keras.ops.convert_to_numpy(plain(images, training=True))
        assert np.max(np.abs(trained - reference)) > 1e-3


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.1", True])
def test_bad_drop_path_rate_is_refused(rate):
    with pytest.raises(ValueError, match="drop_path_rate"):
        kerasarch.resnet18(drop_path_rate=rate)
