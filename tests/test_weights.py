"""Weights: official-format files load 1:1, and the ImageNet cache path is strict.

The real ImageNet files cannot be downloaded here, so keras.applications models with
random weights are written in the official legacy HDF5 layout and loaded through
`weights=<path>`; kerasarch must then predict what keras.applications predicts.
"""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import download, registry
from kerasarch import weights as weights_lib
from kerasarch.benchmark import runners

from conftest import COVERED_BY, forward, raw_images
from legacy_h5 import keras2_name_counters, save_legacy_weights, write_legacy_layers


def twins() -> dict[str, str]:
    """Registry name -> its keras.applications twin ("module.Class"), as the families declare."""
    return {n: kerasarch.model_info(n).twin for n in kerasarch.list_models() if kerasarch.model_info(n).twin}


def twin_of(spec: str):
    """The keras.applications builder and preprocess function a twin spec names (as the benchmark
    finds them)."""
    return runners.keras_application(spec)


TWINS = twins()
# Above this, a twin's equivalence is checked on the smaller twins of its family, which run
# the same builder: ConvNeXt-L/XL (198M/350M parameters) would write 0.8/1.4 GB legacy files
# and build three models each. VGG19 (143.7M) is the largest checked.
TWIN_MAX_PARAMS = 150_000_000
# Families whose twins a dedicated test checks: keras' EfficientNet graph normalizes as its
# files expect only with weights="imagenet", so tests/test_efficientnet.py compares against that.
CHECKED_ELSEWHERE = {"efficientnet": "test_efficientnet.py"}


def _checked_twins() -> list[str]:
    """The twins compared here: of the covered variants that share one member (VGG-16 and
    VGG-19 share VGG-11's builder), the smallest, unless the member is itself a twin."""
    chosen = {}
    for name in sorted(TWINS, key=lambda n: kerasarch.model_info(n).params.total):
        info = kerasarch.model_info(name)
        if info.family in CHECKED_ELSEWHERE or info.params.total > TWIN_MAX_PARAMS:
            continue
        member = COVERED_BY.get(name)
        if member in TWINS:
            continue  # the member is checked here
        chosen.setdefault(member or name, name)
    return sorted(chosen.values())


CHECKED_TWINS = _checked_twins()


def test_every_twin_is_checked_here_by_a_sibling_or_by_its_family_test():
    for name in set(TWINS) - set(CHECKED_TWINS):
        family = kerasarch.model_info(name).family
        if family in CHECKED_ELSEWHERE:
            assert (Path(__file__).parent / CHECKED_ELSEWHERE[family]).exists(), name
        else:
            assert any(kerasarch.model_info(o).family == family for o in CHECKED_TWINS), name


def test_the_keras_applications_twins_are_declared():
    assert set(TWINS) >= {
        "vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2",
        "resnet152v2",
    }
    for spec in TWINS.values():
        twin_of(spec)  # each names a real keras.applications builder


def official_file(name: str, include_top: bool) -> download.WeightFile:
    return kerasarch.model_info(name).imagenet.file(include_top)


def replace_info(monkeypatch, name: str, **changes) -> None:
    """Changes a registered model's metadata for one test."""
    entry = registry._REGISTRY[name]
    info = dataclasses.replace(entry.info, **changes)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, info=info))


def relative_max_difference(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def official_file_and_logits(name: str, tmp_path):
    """The twin with random weights written as its official file, native-size raw images, and
    the twin's logits on them (through its own `preprocess_input`)."""
    twin, preprocess = twin_of(TWINS[name])
    keras2_name_counters()  # the twin's automatic layer names as in the official file
    keras.utils.set_random_seed(0)
    reference = twin(weights=None, classifier_activation=None)
    path = tmp_path / f"{name}_legacy.h5"
    save_legacy_weights(reference, path)
    images = raw_images(kerasarch.model_info(name).input_shape, count=4)
    expected = forward(reference, preprocess(images.astype("float32")))
    del reference
    gc.collect()
    return path, images, expected


@pytest.mark.parametrize("name", CHECKED_TWINS)
def test_official_format_gives_keras_applications_predictions(name, tmp_path):
    path, images, expected = official_file_and_logits(name, tmp_path)
    actual = forward(kerasarch.get_model(name, weights=path, classifier_activation=None), images)
    assert relative_max_difference(actual, expected) < 1e-4


def test_official_format_with_the_default_softmax_head(tmp_path):
    # The default head is the same Dense with a softmax: checked once, on the smallest twin
    path, images, expected = official_file_and_logits("mobilenet", tmp_path)
    probs = forward(kerasarch.get_model("mobilenet", weights=path), images)
    np.testing.assert_allclose(probs, keras.ops.softmax(expected).numpy(), atol=1e-6)


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
    expected = forward(
        reference, keras.applications.vgg16.preprocess_input(images.astype("float32"))
    )
    assert relative_max_difference(forward(model, images), expected) < 1e-4


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
    source = official_file("vgg16", False)
    assert source.url in message
    assert str(keras_home / source.filename) in message
    assert "network is unreachable" in message


def test_imagenet_loads_from_cache_and_refuses_a_wrong_hash(
    keras_home, vgg16_notop_file, monkeypatch
):
    reference, path = vgg16_notop_file
    source = official_file("vgg16", False)
    keras_home.mkdir(parents=True)
    cached = keras_home / source.filename
    cached.write_bytes(path.read_bytes())
    # The test file stands in for the official one: record its own digest.
    digest = weights_lib.file_digest(cached, "sha256")
    files = kerasarch.model_info("vgg16").imagenet
    replace_info(monkeypatch, "vgg16", imagenet=dataclasses.replace(
        files, notop=download.WeightFile(source.url, digest, "sha256")
    ))
    model = kerasarch.vgg16(weights="imagenet", include_top=False)
    images = raw_images((224, 224, 3), count=2)
    expected = forward(
        reference, keras.applications.vgg16.preprocess_input(images.astype("float32"))
    )
    assert relative_max_difference(forward(model, images), expected) < 1e-4

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
                source = official_file(name, include_top)
                assert source.url.startswith("https://storage.googleapis.com/")
                assert len(source.file_hash) == {"md5": 32, "sha256": 64}[source.hash_algorithm]


# --- per-family layer maps and ignored layers ------------------------------------------------


@pytest.fixture(scope="module")
def lenet_and_renamed_file(tmp_path_factory):
    """LeNet-5's weights written the way an auto-named Keras file holds them.

    The layers are named `conv2d`, `conv2d_1`, ... (keras' automatic names), and the file
    has an extra `normalization` layer with weights (mean, variance, count), as in
    keras.applications' EfficientNet and ConvNeXt files.
    """
    keras.utils.set_random_seed(3)
    model = kerasarch.lenet5()
    auto = {"c1": "conv2d", "c3": "conv2d_1", "c5": "conv2d_2", "f6": "dense", "predictions": "dense_1"}
    layers = {"normalization": {"mean": np.zeros(1), "variance": np.ones(1), "count": np.int64(0)}}
    for layer in model.layers:
        if layer.weights:
            layers[auto[layer.name]] = dict(zip(["kernel", "bias"], layer.get_weights(), strict=True))
    path = tmp_path_factory.mktemp("legacy") / "lenet_auto_names.h5"
    write_legacy_layers(path, layers)
    return model, path, {v: k for k, v in auto.items()}


def test_layer_map_and_ignore_list_load_a_renamed_file(lenet_and_renamed_file):
    model, path, layer_map = lenet_and_renamed_file
    fresh = kerasarch.lenet5()
    weights_lib.load(fresh, path, layer_map=layer_map, ignore=("normalization",))
    for a, b in zip(fresh.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_unmatched_layers_are_still_refused(lenet_and_renamed_file):
    _, path, layer_map = lenet_and_renamed_file
    model = kerasarch.lenet5()
    with pytest.raises(ValueError, match=r"in the file but not in the model: \['normalization'\]"):
        weights_lib.load(model, path, layer_map=layer_map)  # the extra layer is not ignored
    partial = {k: v for k, v in layer_map.items() if v != "f6"}
    with pytest.raises(ValueError, match=r"missing from the file: \['f6'\].*\['dense'\]"):
        weights_lib.load(model, path, layer_map=partial, ignore=("normalization",))
    with pytest.raises(ValueError, match=r"lacks layers its layer map or ignore list names: \['stem'\]"):
        weights_lib.load(model, path, layer_map=layer_map, ignore=("normalization", "stem"))
    with pytest.raises(ValueError, match="map onto 'c1'"):
        weights_lib.load(model, path, layer_map={**layer_map, "dense": "c1"}, ignore=("normalization",))


def test_a_family_declared_mapping_applies_to_weights_by_path(lenet_and_renamed_file, monkeypatch):
    model, path, layer_map = lenet_and_renamed_file
    dummy = download.WeightFile("https://example.invalid/lenet.h5", "0" * 64)
    official = weights_lib.ImageNetWeights(dummy, dummy, layer_map=layer_map, ignore=("normalization",))
    replace_info(monkeypatch, "lenet5", imagenet=official)
    loaded = kerasarch.lenet5(weights=path)
    images = raw_images((32, 32, 1), count=2)
    np.testing.assert_array_equal(forward(loaded, images), forward(model, images))
