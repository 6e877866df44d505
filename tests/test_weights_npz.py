"""BiT's official .npz checkpoints and torchvision's .pth files: strictness and the torch extra.

The golden comparisons (timm's BiT filled by timm's own `.npz` loader; torchvision's AlexNet
and GoogLeNet) run with the other goldens in tests/test_weights_timm.py; here are the
refusals and the skipped parts. The files are the goldens' recipe tensors, written with numpy
(`.npz`) or as safetensors under torchvision's names (a `.pth` needs PyTorch, absent here; both
go through the same name map).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from golden.recipe import make_state
from test_weights_timm import golden

import kerasarch
from kerasarch import weights_timm
from kerasarch.extras import MissingExtraError

SHAPE = (32, 32, 3)  # the tensors do not depend on the input size; small is fast


@pytest.fixture(scope="module")
def record() -> dict:
    return golden("bit_r50x1_npz")


@pytest.fixture(scope="module")
def state(record) -> dict:
    return make_state(record["tensors"], record["seed"])


def write_npz(folder: Path, state: dict, name: str = "BiT-M-R50x1.npz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / name, **state)
    return folder / name


def test_the_golden_npz_uses_bits_published_names(record):
    names = [name for name, _, _ in record["tensors"]]
    assert names[0] == "resnet/root_block/standardized_conv2d/kernel"
    assert {
        "resnet/block1/unit01/a/group_norm/gamma", "resnet/block1/unit01/a/proj/standardized_conv2d/kernel",
        "resnet/block4/unit03/c/standardized_conv2d/kernel", "resnet/head/conv2d/kernel",
    } <= set(names)
    shapes = dict((name, shape) for name, shape, _ in record["tensors"])
    assert shapes["resnet/root_block/standardized_conv2d/kernel"] == [7, 7, 3, 64]  # HWIO
    assert shapes["resnet/head/conv2d/kernel"] == [1, 1, 2048, 1000]


def test_a_21k_head_file_loads_the_backbone_and_builds_a_new_head(tmp_path, state, capsys):
    in21k = dict(state)
    in21k["resnet/head/conv2d/kernel"] = np.zeros((1, 1, 2048, 21843), np.float32)
    in21k["resnet/head/conv2d/bias"] = np.zeros(21843, np.float32)
    path = write_npz(tmp_path, in21k)
    model = kerasarch.bit_r50x1(weights=str(path), input_shape=SHAPE, classes=10)
    assert "the head is new (10 classes instead of the file's 21843)" in capsys.readouterr().out
    kernel = model.get_layer("conv3_block2_2_conv").kernel.numpy()
    assert np.array_equal(kernel, state["resnet/block2/unit02/b/standardized_conv2d/kernel"])
    gamma = model.get_layer("conv2_block1_preact_gn").gamma.numpy()
    assert np.array_equal(gamma, state["resnet/block1/unit01/a/group_norm/gamma"])
    assert model.get_layer("predictions").kernel.shape == (2048, 10)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("resnet/block3/unit06/b/group_norm/beta"),
         "missing from the file: ['resnet/block3/unit06/b/group_norm/beta']"),
        (lambda s: s.update({"resnet/block3/unit07/a/group_norm/gamma": np.ones(1024, np.float32)}),
         "in the file but not in the model: ['resnet/block3/unit07/a/group_norm/gamma']"),
        (lambda s: s.update({"resnet/group_norm/gamma": np.ones(1024, np.float32)}),
         "wrong shape: ['resnet/group_norm/gamma (1024,) -> post_gn/gamma (2048,)']"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_every_npz_mismatch_is_refused_naming_the_tensor(tmp_path, state, edit, message):
    broken = dict(state)
    edit(broken)
    with pytest.raises(ValueError) as error:
        kerasarch.bit_r50x1(weights=str(write_npz(tmp_path, broken)), input_shape=SHAPE)
    assert message in str(error.value)


def test_an_npz_for_a_family_without_an_npz_map_is_refused(tmp_path, state):
    path = write_npz(tmp_path, {"resnet/head/conv2d/bias": state["resnet/head/conv2d/bias"]})
    with pytest.raises(ValueError, match=r"resnet18 has no \.npz \(BiT\) name map; .*bit_r50x1"):
        kerasarch.resnet18(weights=str(path))


def test_a_file_that_is_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "BiT-M-R50x1.npz"
    path.write_bytes(b"<html>Not Found</html>")  # what a failed download leaves
    with pytest.raises(ValueError, match="is not a readable .npz checkpoint"):
        kerasarch.bit_r50x1(weights=str(path), input_shape=SHAPE)


def test_the_npz_name_map_covers_every_weighted_layer():
    model = kerasarch.bit_r50x1(input_shape=SHAPE)
    names = weights_timm.NPZ_MAPS["bit_r50x1"]
    modules = [names.module(layer.name) for layer in model.layers if layer.weights]
    assert all(modules) and len(set(modules)) == len(modules)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_a_pth_file_without_pytorch_names_the_torch_extra(tmp_path):
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    path.write_bytes(b"not read: the extra is checked first")
    with pytest.raises(MissingExtraError, match=r"pip install 'kerasarch\[torch\]'"):
        kerasarch.resnet18(weights=str(path))


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_cli_pth_without_pytorch_names_the_extra(tmp_path):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    weights = tmp_path / "resnet18-f37072fd.pth"
    weights.write_bytes(b"unread")
    result = subprocess.run(
        [sys.executable, "-m", "kerasarch", "predict", "resnet18", "--weights", str(weights), str(image)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )
    assert result.returncode == 2
    assert "kerasarch[torch]" in result.stderr


def test_googlenet_pth_aux_heads_are_skipped_and_the_backbone_loads(tmp_path):
    """torchvision's googlenet-1378be20.pth also holds aux1/aux2, which torchvision says are not
    pretrained: they are skipped, with or without kerasarch's own auxiliary heads."""
    from safetensors.numpy import save_file

    record = golden("googlenet_tv")
    state = make_state(record["tensors"], record["seed"])
    state["aux1.fc1.weight"] = np.ones((1024, 2048), np.float32)
    state["aux2.conv.bn.running_var"] = np.ones(128, np.float32)
    save_file(state, str(tmp_path / "model.safetensors"))
    for aux_logits in (False, True):
        model = kerasarch.googlenet_bn(weights=str(tmp_path / "model.safetensors"), input_shape=(64, 64, 3),
                                       aux_logits=aux_logits)
        kernel = model.get_layer("inception_4e_5x5").kernel.numpy()
        assert np.array_equal(kernel, state["inception4e.branch3.1.conv.weight"].transpose(2, 3, 1, 0))
    assert not np.array_equal(model.get_layer("aux1_fc").kernel.numpy(), np.ones((2048, 1024)))


def test_alexnet_without_the_top_skips_the_classifier(tmp_path, capsys):
    from safetensors.numpy import save_file

    record = golden("alexnet_tv")
    table = [row for row in record["tensors"] if row[0].startswith("features.")]
    state = make_state(table, record["seed"])
    for module in ("classifier.1", "classifier.4", "classifier.6"):  # names only: small stand-ins
        state[f"{module}.weight"] = np.ones((1000, 1), np.float32)
        state[f"{module}.bias"] = np.ones(1000, np.float32)
    save_file(state, str(tmp_path / "model.safetensors"))
    model = kerasarch.alexnet(weights=str(tmp_path / "model.safetensors"), include_top=False, pooling="avg")
    assert capsys.readouterr().out == ""
    assert np.array_equal(model.get_layer("conv5").kernel.numpy(),
                          state["features.10.weight"].transpose(2, 3, 1, 0))
