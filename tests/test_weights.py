"""Weights: official-format files load 1:1, and the ImageNet cache path is strict.

The real ImageNet files cannot be downloaded here, so keras.applications models with
random weights are written in the official legacy HDF5 layout and loaded through
`weights=<path>`; kerasarch must then predict what keras.applications predicts.
"""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import weights as weights_lib

from conftest import raw_images
from legacy_h5 import save_legacy_weights

TWINS = {
    "vgg16": (keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
    "vgg19": (keras.applications.VGG19, keras.applications.vgg19.preprocess_input),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet.preprocess_input),
    "resnet101": (keras.applications.ResNet101, keras.applications.resnet.preprocess_input),
    "resnet152": (keras.applications.ResNet152, keras.applications.resnet.preprocess_input),
    "resnet50v2": (keras.applications.ResNet50V2, keras.applications.resnet_v2.preprocess_input),
    "resnet101v2": (keras.applications.ResNet101V2, keras.applications.resnet_v2.preprocess_input),
    "resnet152v2": (keras.applications.ResNet152V2, keras.applications.resnet_v2.preprocess_input),
}


def relative_max_difference(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name", sorted(TWINS))
def test_official_format_gives_keras_applications_predictions(name, tmp_path):
    twin, preprocess = TWINS[name]
    keras.utils.set_random_seed(0)
    reference = twin(weights=None, classifier_activation=None)
    path = tmp_path / f"{name}_legacy.h5"
    save_legacy_weights(reference, path)
    model = kerasarch.get_model(name, weights=path, classifier_activation=None)
    images = raw_images((224, 224, 3), count=4)
    expected = reference.predict(preprocess(images.astype("float32")), verbose=0)
    actual = model.predict(images, verbose=0)
    assert relative_max_difference(actual, expected) < 1e-4
    # The same holds after softmax, the default head.
    del model
    probs = kerasarch.get_model(name, weights=path).predict(images, verbose=0)
    np.testing.assert_allclose(probs, keras.ops.softmax(expected).numpy(), atol=1e-6)
    del reference
    gc.collect()


@pytest.fixture(scope="module")
def vgg16_notop_file(tmp_path_factory):
    keras.utils.set_random_seed(1)
    reference = keras.applications.VGG16(weights=None, include_top=False)
    path = tmp_path_factory.mktemp("weights") / "vgg16_notop_legacy.h5"
    save_legacy_weights(reference, path)
    return reference, path


def test_notop_official_format_matches(vgg16_notop_file):
    reference, path = vgg16_notop_file
    model = kerasarch.vgg16(include_top=False, weights=path, input_shape=(128, 128, 3))
    images = raw_images((128, 128, 3), count=2)
    expected = reference.predict(
        keras.applications.vgg16.preprocess_input(images.astype("float32")), verbose=0
    )
    assert relative_max_difference(model.predict(images, verbose=0), expected) < 1e-4


def test_mismatched_file_is_refused_with_the_layer_names(vgg16_notop_file):
    _, path = vgg16_notop_file
    with pytest.raises(ValueError, match=r"layers missing from the file: \['fc1', 'fc2'"):
        kerasarch.vgg16(weights=path)
    with pytest.raises(ValueError, match="does not match"):
        kerasarch.vgg19(include_top=False, weights=path)


def test_unsupported_weights_file_type(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not weights")
    with pytest.raises(ValueError, match="load_model"):
        kerasarch.lenet5(weights=path)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home" / "models"


def test_imagenet_offline_says_which_file_and_where(keras_home, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(weights_lib.WeightsUnavailableError) as caught:
        kerasarch.vgg16(weights="imagenet", include_top=False)
    message = str(caught.value)
    source = weights_lib.SOURCES[("vgg16", False)]
    assert source.url in message
    assert str(keras_home / source.filename) in message
    assert "network is unreachable" in message


def test_imagenet_loads_from_cache_and_refuses_a_wrong_hash(
    keras_home, vgg16_notop_file, monkeypatch
):
    reference, path = vgg16_notop_file
    source = weights_lib.SOURCES[("vgg16", False)]
    keras_home.mkdir(parents=True)
    cached = keras_home / source.filename
    cached.write_bytes(path.read_bytes())
    # The test file stands in for the official one: record its own digest.
    digest = weights_lib.file_digest(cached, "sha256")
    monkeypatch.setitem(
        weights_lib.SOURCES, ("vgg16", False),
        weights_lib.WeightFile(source.url, digest, "sha256"),
    )
    model = kerasarch.vgg16(weights="imagenet", include_top=False)
    images = raw_images((224, 224, 3), count=2)
    expected = reference.predict(
        keras.applications.vgg16.preprocess_input(images.astype("float32")), verbose=0
    )
    assert relative_max_difference(model.predict(images, verbose=0), expected) < 1e-4

    with open(cached, "r+b") as f:  # corrupt one byte
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(ValueError, match=rf"sha256 [0-9a-f]{{64}}, expected {digest}"):
        kerasarch.vgg16(weights="imagenet", include_top=False)


def test_official_sources_are_recorded_for_every_model_with_imagenet_weights():
    for name in kerasarch.list_models():
        if kerasarch.model_info(name).imagenet_weights:
            for include_top in (True, False):
                source = weights_lib.SOURCES[(name, include_top)]
                assert source.url.startswith("https://storage.googleapis.com/")
                assert len(source.file_hash) == {"md5": 32, "sha256": 64}[source.hash_algorithm]
