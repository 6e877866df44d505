"""VGG and AlexNet keep their classifier head at any input size (issue 10, point 6).

Their heads flatten a fixed grid (VGG 7x7x512, AlexNet 6x6x256); an adaptive average
pooling (torchvision's rule) brings the last feature map to that grid, so the head builds,
predicts and trains at the lessons' 64-160 px, and the fc weights fit at every size.
"""

from __future__ import annotations

import gc
import math

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch.layers import AdaptiveAveragePooling2D

from conftest import forward, raw_images
from legacy_h5 import save_legacy_weights

SMALLEST = {"vgg16": 32, "alexnet": 63}


def torch_adaptive_average_pool(x: np.ndarray, out: int) -> np.ndarray:
    """torchvision's AdaptiveAvgPool2d rule, written out with loops (the reference)."""
    batch, height, width, channels = x.shape
    y = np.zeros((batch, out, out, channels))
    for i in range(out):
        top, bottom = (i * height) // out, math.ceil((i + 1) * height / out)
        for j in range(out):
            left, right = (j * width) // out, math.ceil((j + 1) * width / out)
            y[:, i, j] = x[:, top:bottom, left:right].mean(axis=(1, 2))
    return y


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (4, 4), (13, 13), (14, 9)])
def test_adaptive_pooling_follows_torchvision_also_below_the_grid(size):
    x = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")
    got = AdaptiveAveragePooling2D(7)(x)
    np.testing.assert_allclose(got, torch_adaptive_average_pool(x, 7), rtol=1e-5, atol=1e-6)


def test_adaptive_pooling_is_the_identity_at_the_grid_size_and_takes_unknown_sizes():
    x = np.random.default_rng(1).normal(size=(2, 7, 7, 4)).astype("float32")
    np.testing.assert_array_equal(AdaptiveAveragePooling2D(7)(x), x)
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, AdaptiveAveragePooling2D((6, 6))(inputs))
    assert model.output_shape == (None, 6, 6, 4)
    for size in (1, 2, 13):
        x = np.random.default_rng(size).normal(size=(1, size, size, 4)).astype("float32")
        np.testing.assert_allclose(
            forward(model, x), torch_adaptive_average_pool(x, 6), rtol=1e-5, atol=1e-6
        )


def test_adaptive_pooling_rejects_a_bad_output_size():
    with pytest.raises(ValueError, match=r"`output_size`.*received \(0, 7\)"):
        AdaptiveAveragePooling2D((0, 7))


# The first convolution (gradients reach it through the pooling), the first fc layer, the head.
WATCHED = {"vgg16": ("block1_conv1", "fc1", "predictions"), "alexnet": ("conv1", "fc6", "predictions")}


def _train_one_step(model: keras.Model, name: str, size: int) -> tuple[float, dict[str, float]]:
    """One SGD step on two images; returns the loss and how far the watched kernels moved."""
    before = {n: model.get_layer(n).kernel.numpy().copy() for n in WATCHED[name]}
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(raw_images((size, size, 3), count=2), np.array([1, 7]))
    moved = {
        n: float(np.abs(model.get_layer(n).kernel.numpy() - value).max())
        for n, value in before.items()
    }
    return float(loss), moved


@pytest.mark.parametrize("name", ["vgg16", "alexnet"])
@pytest.mark.parametrize("size", [64, 128, 160])
def test_head_builds_predicts_and_trains_at_lesson_sizes(name, size):
    keras.utils.set_random_seed(0)
    model = kerasarch.get_model(name, input_shape=(size, size, 3), classes=10)
    # The fc layers do not depend on the size: the same count as the native model's minus
    # the 1000-class head plus the 10-class one.
    info = kerasarch.model_info(name)
    fc_in = model.get_layer("predictions").kernel.shape[0]
    assert model.count_params() == info.params.total - (fc_in + 1) * (1000 - 10)
    probs = forward(model, raw_images((size, size, 3), count=2))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-4)
    loss, moved = _train_one_step(model, name, size)
    assert np.isfinite(loss)
    assert all(delta > 0 for delta in moved.values()), moved
    del model
    gc.collect()


@pytest.mark.parametrize("name", ["vgg16", "alexnet"])
def test_smallest_size_with_the_head_and_one_below(name):
    smallest = SMALLEST[name]
    assert kerasarch.model_info(name).min_size == smallest
    model = kerasarch.get_model(name, input_shape=(smallest, smallest, 3), classes=10)
    out = forward(model, raw_images((smallest, smallest, 3), count=2))
    assert out.shape == (2, 10)
    del model
    gc.collect()
    below = smallest - 1
    with pytest.raises(ValueError, match=rf"`input_shape`: \({below}, {below}, 3\).*>= {smallest}"):
        kerasarch.get_model(name, input_shape=(below, below, 3), classes=10)


def test_head_with_unknown_size_round_trips_through_keras_file(tmp_path):
    model = kerasarch.alexnet(input_shape=(None, None, 3), classes=5)
    images = {size: raw_images((size, size, 3), count=2, seed=size) for size in (63, 100, 224)}
    expected = {size: forward(model, x) for size, x in images.items()}
    for out in expected.values():
        assert out.shape == (2, 5)
    path = tmp_path / "alexnet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("avgpool"), AdaptiveAveragePooling2D)
    for size, x in images.items():
        np.testing.assert_allclose(forward(loaded, x), expected[size], rtol=1e-6)


def test_official_vgg16_file_with_head_loads_at_another_size(tmp_path):
    # The keras.applications layout (no pooling layer; weights matched by name) loads into
    # the 160 px model: fc1 keeps its 25088 inputs, so the ImageNet head is usable there.
    keras.utils.set_random_seed(2)
    reference = keras.applications.VGG16(weights=None)
    path = tmp_path / "vgg16_legacy.h5"
    save_legacy_weights(reference, path)
    fc1 = reference.get_layer("fc1").kernel.numpy()
    del reference
    gc.collect()
    model = kerasarch.vgg16(weights=path, input_shape=(160, 160, 3))
    np.testing.assert_array_equal(model.get_layer("fc1").kernel.numpy(), fc1)
    probs = forward(model, raw_images((160, 160, 3), count=2))
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-4)
