"""The model contract's argument checks and shared behaviour (DESIGN.md section 1)."""

from __future__ import annotations

import contextlib
import inspect
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasarch
from kerasarch import registry

from conftest import forward


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"classes": 0}, r"`classes`: 0\. Expected an integer >= 1"),
        ({"classes": 2.5}, r"`classes`: 2\.5"),
        ({"include_top": False, "input_shape": (16, 16, 3)}, r"`input_shape`: \(16, 16, 3\).*>= 32"),
        ({"include_top": False, "pooling": "mean"}, r"`pooling`: 'mean'. Expected one of"),
        ({"weights": "imagenet", "classes": 10}, r"`classes`: 10.*classes must be 1000"),
        ({"augmentation": "mixup"}, r"`augmentation`: 'mixup'. Expected None"),
        ({"weights": "no/such/file.h5"}, r"`weights`: 'no/such/file.h5'"),
        ({"input_shape": (224, 224, 1), "include_top": False}, r"takes 3 channel\(s\), received 1"),
        ({"input_shape": (31, 31, 3)}, r"`input_shape`: \(31, 31, 3\).*>= 32"),
        ({"input_shape": (224, 224)}, r"Expected 3 values"),
        ({"name": ""}, r"`name`: ''"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        kerasarch.vgg16(**kwargs)


def test_imagenet_refused_for_a_model_without_published_weights():
    with pytest.raises(ValueError, match=r"alexnet has no published ImageNet weights"):
        kerasarch.alexnet(weights="imagenet")


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="input_tensor"):
        kerasarch.lenet5(input_tensor=None)


def test_logits_and_custom_classes():
    model = kerasarch.lenet5(classes=3, classifier_activation=None)
    out = forward(model, np.zeros((2, 32, 32, 1), np.uint8))
    assert out.shape == (2, 3)
    assert not np.allclose(out.sum(-1), 1.0)


def test_preprocessing_is_in_the_graph_and_can_be_left_out():
    with_pre = kerasarch.lenet5()
    without = kerasarch.lenet5(include_preprocessing=False)
    assert "preprocessing" in [layer.name for layer in with_pre.layers]
    assert "preprocessing" not in [layer.name for layer in without.layers]
    without.set_weights(with_pre.get_weights())
    raw = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 1)).astype("float32")
    # LeCun's normalization: background (0) -> -0.1, foreground (255) -> 1.175.
    normalized = (raw - 20.0) / 200.0
    np.testing.assert_allclose(
        forward(with_pre, raw), forward(without, normalized), rtol=1e-5
    )


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets the global dtype policy, then restores the one that was set (Keras 3 API)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.fixture
def mixed_precision():
    with dtype_policy("mixed_float16"):
        yield


def test_the_policy_helper_restores_the_previous_policy_not_float32():
    with dtype_policy("bfloat16"):
        with dtype_policy("mixed_float16"):
            assert keras.config.dtype_policy().name == "mixed_float16"
        assert keras.config.dtype_policy().name == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("include_top", [True, False])
def test_outputs_are_float32_under_mixed_precision(mixed_precision, include_top):
    model = kerasarch.alexnet(input_shape=(96, 96, 3), include_top=include_top, pooling="avg")
    assert model.get_layer("conv1").compute_dtype == "float16"
    out = model(np.zeros((1, 96, 96, 3), np.uint8))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_graph_does_not_depend_on_weights(tmp_path):
    model = kerasarch.lenet5()
    path = tmp_path / "lenet.weights.h5"
    model.save_weights(path)
    loaded = kerasarch.lenet5(weights=path)
    assert loaded.get_config() == model.get_config()
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 1)).astype("uint8")
    np.testing.assert_array_equal(forward(loaded, x), forward(model, x))


def test_registry_lists_gets_and_describes():
    names = kerasarch.list_models()
    for expected in ("lenet5", "alexnet", "vgg11", "vgg16", "vgg19", "vgg19_bn"):
        assert expected in names
    assert kerasarch.list_models("lenet") == ["lenet5"]
    info = kerasarch.model_info("vgg16")
    assert info.year == 2014 and info.input_shape == (224, 224, 3)
    assert info.imagenet_weights and info.preprocessing == "caffe"
    assert info.params.total == 138_357_544
    assert kerasarch.model_info("vgg16_bn").imagenet_weights is False
    bn = kerasarch.get_model("vgg11_bn", include_top=False)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers)


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="'lenet5' is already registered"):
        registry.register(paper="x", year=2000, input_shape=(1, 1, 1), preprocessing="tf",
                          params=None)(kerasarch.lenet5)
    with pytest.raises(ValueError, match=r"Unknown model name: 'resnet9000'.*lenet5"):
        kerasarch.get_model("resnet9000")


@pytest.mark.parametrize("call", [kerasarch.get_model, kerasarch.model_info])
def test_unknown_names_get_a_did_you_mean(call):
    with pytest.raises(ValueError, match=r"'vgg16_nb'\. Did you mean 'vgg16_bn'"):
        call("vgg16_nb")
    with pytest.raises(ValueError, match=r"'restnet50'\. Did you mean 'resnet50'"):
        call("restnet50")


@pytest.mark.parametrize("activation", ["softmaxx", 3])
def test_invalid_classifier_activation_is_a_value_error_naming_the_argument(activation):
    with pytest.raises(ValueError, match=rf"`classifier_activation`: {activation!r}"):
        kerasarch.lenet5(classifier_activation=activation)


def test_valid_activations_are_accepted():
    for activation in ("sigmoid", keras.activations.relu, None):
        assert kerasarch.lenet5(classifier_activation=activation).output_shape == (None, 10)


def test_every_registered_name_is_a_top_level_attribute_with_real_parameters():
    for name in kerasarch.list_models():
        assert callable(getattr(kerasarch, name))
        assert name in dir(kerasarch) and name in kerasarch.__all__
    signature = inspect.signature(kerasarch.vgg16_bn)
    assert "batch_norm" not in signature.parameters and "include_top" in signature.parameters
    assert kerasarch.vgg16_bn.__name__ == "vgg16_bn"
    bn = kerasarch.vgg16_bn(include_top=False, input_shape=(32, 32, 3))
    assert bn.name == "vgg16_bn"
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers)
    with pytest.raises(AttributeError, match="vgg17"):
        kerasarch.vgg17  # noqa: B018


def test_help_shows_the_builders_real_keyword_arguments():
    import pydoc

    text = pydoc.render_doc(kerasarch.resnet50, renderer=pydoc.plaintext)
    assert "resnet50(*, include_top=True, weights=None" in text and "drop_path_rate=0.0" in text
    assert "**kwargs" not in text
    assert "include_top (bool): Put the classifier head" in text  # the shared Args section
    assert "drop_path_rate (float): Stochastic depth" in text  # the family's own


def test_importing_kerasarch_does_not_import_tensorflow_or_keras():
    code = (
        "import sys, kerasarch; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')); "
        "print(len(heavy), kerasarch.__version__)"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["0", kerasarch.__version__]
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "kerasarch" in imported
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras")]


@pytest.mark.parametrize("imports", [
    "import kerasarch; import keras",
    "import keras; import kerasarch",
    # the CLI's order: TensorFlow imports Keras during its own start-up
    "import kerasarch; import tensorflow; import keras",
])
def test_plain_import_kerasarch_is_enough_to_load_its_keras_files(imports, tmp_path):
    path = tmp_path / "augmented.keras"
    kerasarch.lenet5(augmentation="randaugment", input_shape=(32, 32, 1)).save(path)
    script = f"{imports}\nimport sys\nm = keras.saving.load_model(sys.argv[1])\nprint('loaded', m.name)"
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "loaded lenet5" in proc.stdout, proc.stderr[-2000:]


def test_each_covered_variant_names_an_uncovered_member_of_its_family():
    from conftest import COVERED_BY

    for name, member in COVERED_BY.items():
        assert name in kerasarch.list_models(), f"{name} is not registered"
        assert member not in COVERED_BY, f"{name}: {member} is itself covered by another model"
        assert kerasarch.model_info(member).family == kerasarch.model_info(name).family, name
