"""timm weights (Hugging Face hub / safetensors) and BiT's .npz: golden outputs of the reference code.

The real hub files cannot be downloaded here. `tests/golden/make_golden.py` ran timm's own
models once, filled with the seeded numpy recipe of `tests/golden/recipe.py`, and recorded
their outputs; these tests rebuild the identical tensors with numpy, write them as a
safetensors file (with the hub's `config.json` beside it) and load it through kerasarch.
A golden of `"format": "npz"` holds BiT's `.npz` names and layouts, which timm's own `.npz`
loader read into timm's model; the test writes them as that `.npz` file. A golden of
`"format": "torchvision"` holds torchvision's state-dict names (AlexNet, GoogLeNet, whose
weights are `.pth` files): reading a `.pth` needs PyTorch, which the test environment does not
have, so the tensors are written as a safetensors file without a config (as a `.pth` comes),
which goes through the same name map, conversion and checks; only the reading differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from golden.recipe import make_inputs, make_state
from safetensors.numpy import save_file

import kerasarch
from kerasarch import weights_timm

from conftest import forward

GOLDEN = Path(__file__).parent / "golden"
# Relative tolerance: max |kerasarch - timm| / max |timm| over the recorded logits (float32
# on both sides; the difference is accumulation order).
RTOL = 1e-4


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def write_weights(folder: Path, record: dict, state: dict | None = None, config: dict | None = None) -> Path:
    """The recipe's tensors as `model.safetensors`, with a hub-style `config.json` beside it.

    A golden of BiT's `.npz` format is written as the `.npz` file it names instead; one of
    torchvision's as a safetensors file without a config.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = make_state(record["tensors"], record["seed"]) if state is None else state
    if record.get("format") == "npz":
        path = folder / record["file"]
        np.savez(path, **state)
        return path
    if record.get("format") == "torchvision":
        save_file(state, str(folder / "model.safetensors"))
        return folder / "model.safetensors"
    path = folder / "model.safetensors"
    save_file(state, str(path))
    config = config if config is not None else {
        "architecture": record["architecture"], "num_classes": record["num_classes"],
        "pretrained_cfg": record["pretrained_cfg"],
    }
    (folder / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> Path:
    return write_weights(tmp_path_factory.mktemp("resnet18"), golden("resnet18"))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


GOLDENS = sorted(path.stem for path in GOLDEN.glob("*.json"))


@pytest.mark.parametrize("name", GOLDENS)
def test_timm_safetensors_reproduce_the_reference_outputs(name, tmp_path):
    record = golden(name)
    path = write_weights(tmp_path / name, record)
    height, width = record["input_shape"][1:3]
    model = kerasarch.get_model(
        record["variant"], weights=str(path), input_shape=(height, width, 3), classifier_activation=None,
        **record.get("build_args", {}),
    )
    norm = model.get_layer("preprocessing")
    assert np.allclose(norm.mean, np.array(record["pretrained_cfg"]["mean"]) * 255)
    assert np.allclose(norm.std, np.array(record["pretrained_cfg"]["std"]) * 255)
    logits = forward(model, make_inputs(record["input_shape"], record["seed"]))
    expected = np.array(record["logits"], np.float32)
    assert np.ptp(expected) > 0.5  # the recorded logits are not trivial
    assert relative_error(logits, expected) < RTOL


def test_golden_recipe_rebuilds_the_recorded_table():
    record = golden("resnet18")
    state = make_state(record["tensors"], record["seed"])
    assert [[k, list(v.shape), str(v.dtype)] for k, v in state.items()] == record["tensors"]
    assert all(v.min() > 0 for k, v in state.items() if k.endswith("running_var"))


def test_new_class_count_loads_the_backbone_and_a_new_head(resnet18_file, capsys):
    model = kerasarch.resnet18(weights=str(resnet18_file), classes=10, input_shape=(64, 64, 3))
    assert "the head is new (10 classes instead of the file's 1000)" in capsys.readouterr().out
    record = golden("resnet18")
    state = make_state(record["tensors"], record["seed"])
    kernel = model.get_layer("conv4_block2_2_conv").kernel.numpy()
    assert np.array_equal(kernel, state["layer3.1.conv2.weight"].transpose(2, 3, 1, 0))
    bn = model.get_layer("conv1_bn")
    assert np.array_equal(bn.moving_variance.numpy(), state["bn1.running_var"])
    assert model.get_layer("predictions").kernel.shape == (512, 10)


def test_without_the_head_the_backbone_loads_silently(resnet18_file, capsys):
    model = kerasarch.resnet18(weights=str(resnet18_file), include_top=False, pooling="avg",
                               input_shape=(64, 64, 3))
    assert capsys.readouterr().out == ""
    record = golden("resnet18")
    state = make_state(record["tensors"], record["seed"])
    assert np.array_equal(model.get_layer("conv2_block1_1_bn").gamma.numpy(), state["layer1.0.bn1.weight"])


def _broken(tmp_path, edit) -> Path:
    record = golden("resnet18")
    state = make_state(record["tensors"], record["seed"])
    edit(state)
    return write_weights(tmp_path / "broken", record, state=state)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("layer4.1.bn2.running_var"), "missing from the file: ['layer4.1.bn2.running_var']"),
        (lambda s: s.update({"extra.weight": np.ones(3, np.float32)}),
         "in the file but not in the model: ['extra.weight']"),
        (lambda s: s.update({"layer1.0.conv1.weight": np.ones((64, 64, 1, 1), np.float32)}),
         "wrong shape: ['layer1.0.conv1.weight (64, 64, 1, 1) -> "
         "conv2_block1_1_conv/kernel (3, 3, 64, 64)']"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_every_mismatch_is_refused_naming_the_tensor(tmp_path, edit, message):
    path = _broken(tmp_path, edit)
    with pytest.raises(ValueError) as error:
        kerasarch.resnet18(weights=str(path), input_shape=(64, 64, 3))
    assert message in str(error.value)


def test_a_file_of_another_depth_is_refused(resnet18_file):
    os.remove(resnet18_file.parent / "config.json")  # no architecture check: the tensors decide
    try:
        with pytest.raises(ValueError, match=r"missing from the file: \['layer1.2.conv1.weight'"):
            kerasarch.resnet34(weights=str(resnet18_file), input_shape=(64, 64, 3))
    finally:
        write_weights(resnet18_file.parent, golden("resnet18"))


def test_a_config_for_another_architecture_is_refused(tmp_path):
    record = golden("resnet18")
    path = write_weights(tmp_path, record, config={"architecture": "resnet18"})
    with pytest.raises(ValueError, match="timm architecture 'resnet18'.*resnet34 loads 'resnet34'"):
        kerasarch.resnet34(weights=str(path))


def test_a_family_without_a_name_map_is_refused(resnet18_file):
    with pytest.raises(ValueError, match="inception_resnet_v2 has no timm name map; timm weights load "
                       "into: .*resnet18"):
        kerasarch.inception_resnet_v2(weights=str(resnet18_file))


def test_keras_layout_resnet50_points_to_resnet50_tv():
    with pytest.raises(ValueError, match=r"no timm name map \(timm's layout of resnet50 is resnet50_tv\)"):
        kerasarch.resnet50(weights="hf://timm/resnet50.a1_in1k")


def test_malformed_hub_name_is_refused():
    with pytest.raises(ValueError, match="Expected 'hf://<owner>/<repository>'"):
        kerasarch.resnet18(weights="hf://resnet18.a1_in1k")


def test_cli_offline_hub_weights_name_repository_file_and_where_to_put_it(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    result = subprocess.run(
        [sys.executable, "-m", "kerasarch", "predict", "resnet18", "--weights", "hf://timm/resnet18.a1_in1k",
         str(image)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "model.safetensors of the Hugging Face repository timm/resnet18.a1_in1k" in text
    assert str(tmp_path / "hf" / "hub") in text
    assert "weights='<folder>/model.safetensors'" in text


def test_resnet_name_map_covers_every_weighted_layer():
    model = kerasarch.resnet18(input_shape=(32, 32, 3))
    names = weights_timm.NAME_MAPS["resnet18"]
    assert {names.module(layer.name) for layer in model.layers if layer.weights} >= {
        "conv1", "bn1", "fc", "layer2.0.downsample.0", "layer2.0.downsample.1", "layer4.1.bn2",
    }
    assert all(names.module(layer.name) for layer in model.layers if layer.weights)


def test_vgg_without_the_top_skips_timm_pre_logits_and_head(tmp_path, capsys):
    record = golden("vgg11_bn")
    # The skipped modules' tensors only need their names here: small stand-ins keep the file small.
    table = [row for row in record["tensors"] if row[0].startswith("features.")]
    state = make_state(table, record["seed"])
    for module in ("pre_logits.fc1", "pre_logits.fc2", "head.fc"):
        state[f"{module}.weight"] = np.ones((1000, 1), np.float32)
        state[f"{module}.bias"] = np.ones(1000, np.float32)
    path = write_weights(tmp_path, record, state=state)
    model = kerasarch.vgg11_bn(weights=str(path), include_top=False, input_shape=(32, 32, 3))
    assert capsys.readouterr().out == ""
    kernel = model.get_layer("block5_conv2").kernel.numpy()
    assert np.array_equal(kernel, state["features.25.weight"].transpose(2, 3, 1, 0))
    moving_mean = model.get_layer("block5_conv2_bn").moving_mean.numpy()
    assert np.array_equal(moving_mean, state["features.26.running_mean"])


def test_without_a_config_the_normalization_is_timms_default_not_the_variants(tmp_path):
    record = golden("vgg11_bn")
    state = {k: np.ones((1, 1), np.float32) for k in ("head.fc.weight",)}
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    # Plain VGG normalizes for the Keras weights (caffe); timm's VGG weights want mean/std.
    assert kerasarch.model_info("vgg11").preprocessing == "caffe"
    source = weights_timm.resolve("vgg11", str(path))
    spec = source.normalization(weights_timm.NAME_MAPS["vgg11"].normalization)
    assert spec.mean == pytest.approx(tuple(255 * m for m in record["pretrained_cfg"]["mean"]))
    assert not spec.reverse_channels


def test_cli_predicts_with_a_safetensors_file(resnet18_file, tmp_path):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(make_inputs([1, 64, 64, 3], 0)[0]).save(image)
    result = subprocess.run(
        [sys.executable, "-m", "kerasarch", "predict", "resnet18", "--weights", str(resnet18_file),
         "--top-k", "3", str(image)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_HOME": str(tmp_path / "keras")},  # no class names: indices
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    start = lines.index(str(image))  # after keras' "Downloading ..." of the (absent) class names
    assert [line.split(".")[0].strip() for line in lines[start + 1:start + 4]] == ["1", "2", "3"]


def test_efficientnet_block_letters_past_z_map_to_timm_indices():
    from kerasarch.models import efficientnet

    names = weights_timm.NAME_MAPS["efficientnet_l2"]
    for index in (0, 25, 26, 30, 60):
        layer = f"block6{efficientnet.block_letter(index)}_dwconv"
        assert names.module(layer) == f"blocks.5.{index}.conv_dw"
    assert names.module("block1b_project_conv") == "blocks.0.1.conv_pw"
    assert names.module("block2b_project_conv") == "blocks.1.1.conv_pwl"


def test_mobilenet_v2_layout_must_be_the_weights_source(tmp_path):
    path = write_weights(tmp_path, golden("mobilenet_v2"))
    with pytest.raises(ValueError, match=r"'keras'. The weights .* in timm's layout \(symmetric .*'torch'"):
        kerasarch.mobilenet_v2(weights=str(path))
    with pytest.raises(ValueError, match=r"`layout`: 'torch'. keras.applications' .*use layout='keras'"):
        kerasarch.mobilenet_v2(weights="imagenet", layout="torch")
    with pytest.raises(ValueError, match=r"argument `layout`: 'same'. Expected one of \('keras', 'torch'\)"):
        kerasarch.mobilenet_v2(layout="same")


def test_inception_v3_timm_weights_need_the_torch_layout(tmp_path):
    path = write_weights(tmp_path, golden("inception_v3"))
    with pytest.raises(ValueError, match=r"'keras'. The weights .* in timm's layout \(BatchNorm with scale"):
        kerasarch.inception_v3(weights=str(path))
    model = kerasarch.inception_v3(layout="torch", input_shape=(75, 75, 3))
    assert model.get_layer("mixed0_branch_pool_pad")  # the pool counts its padding, as PyTorch's
    assert model.get_layer("stem1_bn").scale
