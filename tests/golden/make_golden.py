"""Records golden outputs of timm reference models (run once by a developer; not part of the tests).

Needs PyTorch, torchvision and timm in a separate environment (never a kerasarch dependency):

    python -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch torchvision timm
    /tmp/torchenv/bin/python tests/golden/make_golden.py [NAME ...]

For each model of `MODELS` it builds timm's definition, fills its state dict with the seeded
numpy recipe of `recipe.py`, runs a few recorded raw images through timm's own preprocessing
(the architecture's default pretrained config: mean/std) and the model, and writes
`tests/golden/<name>.json`: the tensor table (names, shapes, dtypes), the seed, the recipe,
the pretrained config, the input shape and the logits. Tests rebuild everything else with numpy.

`NPZ_MODELS` do the same for Big Transfer's official `.npz` checkpoints: the recipe's tensors
are drawn under BiT's names and TensorFlow layouts (`resnet/block1/unit01/a/standardized_conv2d/
kernel`, kernels (h, w, in, out)), written as an `.npz` and loaded into timm's model by timm's
own loader for those files (`ResNetV2.load_pretrained`), every parameter first set to NaN so
that one the file does not fill shows in the outputs.

`TORCHVISION_MODELS` record torchvision's own AlexNet and GoogLeNet (timm has neither; their
published weights are `.pth` files): the state dict under torchvision's names, GoogLeNet with
aux_logits and transform_input off. Its weights come from TensorFlow and torchvision feeds
them [-1, 1] (transform_input=True maps its mean/std input there), so its inputs are recorded
normalized that way; AlexNet's with the ImageNet mean/std. `pretrained_cfg` states which.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
import torchvision

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from recipe import RECIPE, make_inputs, make_state  # noqa: E402

# kerasarch variant -> (timm architecture, seed, recorded input shape NHWC)
MODELS = {
    "resnet18": ("resnet18", 18, [2, 64, 64, 3]),
    "resnet34": ("resnet34", 34, [2, 64, 64, 3]),
    "resnet50_tv": ("resnet50", 5015, [2, 64, 64, 3]),
    "wide_resnet50_2": ("wide_resnet50_2", 50, [2, 64, 64, 3]),
    "vgg11_bn": ("vgg11_bn", 11, [2, 64, 64, 3]),
    "densenet121": ("densenet121", 121, [2, 64, 64, 3]),
    "convnext_tiny": ("convnext_tiny", 2022, [2, 64, 64, 3]),
    "efficientnet_b0": ("tf_efficientnet_b0", 2019, [2, 64, 64, 3]),
    "bit_r50x1": ("resnetv2_50x1_bit", 2020, [2, 64, 64, 3]),
    "mobilenet_v2": ("mobilenetv2_100", 2018, [2, 64, 64, 3]),
    "inception_v3": ("inception_v3", 2015, [2, 75, 75, 3]),
}
# The kerasarch builder arguments a variant needs for timm's layout (recorded in the golden).
BUILD_ARGS = {"mobilenet_v2": {"layout": "torch"}, "inception_v3": {"layout": "torch"}}
# golden name -> (kerasarch variant, timm architecture, seed, input shape NHWC, .npz file name)
NPZ_MODELS = {
    "bit_r50x1_npz": ("bit_r50x1", "resnetv2_50x1_bit", 2021, [2, 64, 64, 3], "BiT-M-R50x1-ILSVRC2012.npz"),
}

# golden name -> (kerasarch variant, torchvision builder, seed, input shape NHWC, .pth file, mean/std)
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_TF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
TORCHVISION_MODELS = {
    "alexnet_tv": ("alexnet", "alexnet", 2012, [2, 224, 224, 3], "alexnet-owt-7be5be79.pth", _IMAGENET),
    "googlenet_tv": ("googlenet_bn", "googlenet", 2014, [2, 64, 64, 3], "googlenet-1378be20.pth", _TF),
}


def _logits(model, cfg, input_shape: list[int], seed: int) -> np.ndarray:
    """The model's outputs for the recorded raw images, normalized by timm's pretrained config."""
    images = make_inputs(input_shape, seed).astype(np.float32) / 255.0
    x = (images - np.array(cfg["mean"], np.float32)) / np.array(cfg["std"], np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def _write(name: str, golden: dict, logits: np.ndarray) -> Path:
    cfg_keys = ("mean", "std", "interpolation", "crop_pct", "input_size")
    golden["pretrained_cfg"] = {k: golden["pretrained_cfg"][k] for k in cfg_keys}
    golden["num_classes"] = int(logits.shape[1])
    golden["logits"] = [[float(f"{v:.7g}") for v in row] for row in logits]
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    return path


def bit_npz_table(model) -> list[list]:
    """BiT's `.npz` names for every parameter of timm's ResNetV2, with TensorFlow's shapes.

    The names are those BiT publishes (and timm's `_load_weights` reads); each parameter of
    the model gets exactly one, checked here.
    """
    state = model.state_dict()
    rows = [("resnet/root_block/standardized_conv2d/kernel", "stem.conv.weight")]
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage.blocks):
            npz, pt = f"resnet/block{i + 1}/unit{j + 1:02d}/", f"stages.{i}.blocks.{j}."
            for unit, n in (("a", 1), ("b", 2), ("c", 3)):
                rows += [(f"{npz}{unit}/group_norm/gamma", f"{pt}norm{n}.weight"),
                         (f"{npz}{unit}/group_norm/beta", f"{pt}norm{n}.bias"),
                         (f"{npz}{unit}/standardized_conv2d/kernel", f"{pt}conv{n}.weight")]
            if block.downsample is not None:
                rows.append((f"{npz}a/proj/standardized_conv2d/kernel", f"{pt}downsample.conv.weight"))
    rows += [("resnet/group_norm/gamma", "norm.weight"), ("resnet/group_norm/beta", "norm.bias"),
             ("resnet/head/conv2d/kernel", "head.fc.weight"), ("resnet/head/conv2d/bias", "head.fc.bias")]
    assert sorted(pt for _, pt in rows) == sorted(state), "the npz table must cover every parameter once"

    def tf_shape(shape) -> list[int]:
        return [shape[2], shape[3], shape[1], shape[0]] if len(shape) == 4 else list(shape)

    return [[npz, tf_shape(state[pt].shape), "float32"] for npz, pt in rows]


def record_npz(name: str) -> Path:
    """Fills timm's BiT model from a recipe `.npz` through timm's own loader; writes its golden file."""
    variant, architecture, seed, input_shape, file_name = NPZ_MODELS[name]
    model = timm.create_model(architecture, pretrained=False).eval()
    table = bit_npz_table(model)
    with torch.no_grad():
        for value in model.state_dict().values():
            value.fill_(float("nan"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / file_name
        np.savez(path, **make_state(table, seed))
        model.load_pretrained(str(path))
    logits = _logits(model, model.pretrained_cfg, input_shape, seed)
    assert np.isfinite(logits).all(), "a parameter was not filled from the .npz"
    return _write(name, {
        "variant": variant, "format": "npz", "file": file_name, "architecture": architecture,
        "loaded_with": "timm ResNetV2.load_pretrained (timm.models.resnetv2._load_weights)",
        "made_with": {"torch": torch.__version__, "timm": timm.__version__},
        "recipe": RECIPE, "seed": seed, "pretrained_cfg": model.pretrained_cfg,
        "tensors": table, "input_shape": input_shape,
    }, logits)


def record_torchvision(name: str) -> Path:
    """Builds, fills and runs one torchvision model (state-dict names of its `.pth`); writes its golden."""
    variant, builder, seed, input_shape, file_name, (mean, std) = TORCHVISION_MODELS[name]
    options = {}
    if builder == "googlenet":
        options = {"aux_logits": False, "transform_input": False, "init_weights": False}
    model = getattr(torchvision.models, builder)(weights=None, **options).eval()
    table = [[key, list(value.shape), str(value.dtype).removeprefix("torch.")]
             for key, value in model.state_dict().items()]
    state = {key: torch.from_numpy(value) for key, value in make_state(table, seed).items()}
    model.load_state_dict(state, strict=True)
    cfg = {"mean": list(mean), "std": list(std), "interpolation": "bilinear", "crop_pct": 0.875,
           "input_size": [3, 224, 224]}
    logits = _logits(model, cfg, input_shape, seed)
    return _write(name, {
        "variant": variant, "format": "torchvision", "file": file_name, "architecture": builder,
        "options": options,
        "made_with": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        "recipe": RECIPE, "seed": seed, "pretrained_cfg": cfg, "tensors": table, "input_shape": input_shape,
    }, logits)


def record(name: str) -> Path:
    """Builds, fills and runs one reference model; writes its golden file."""
    architecture, seed, input_shape = MODELS[name]
    model = timm.create_model(architecture, pretrained=False).eval()
    table = [[key, list(value.shape), str(value.dtype).removeprefix("torch.")]
             for key, value in model.state_dict().items()]
    state = {key: torch.from_numpy(value) for key, value in make_state(table, seed).items()}
    model.load_state_dict(state, strict=True)
    logits = _logits(model, model.pretrained_cfg, input_shape, seed)
    return _write(name, {
        "variant": name, "architecture": architecture, "build_args": BUILD_ARGS.get(name, {}),
        "made_with": {"torch": torch.__version__, "timm": timm.__version__},
        "recipe": RECIPE, "seed": seed, "pretrained_cfg": model.pretrained_cfg,
        "tensors": table, "input_shape": input_shape,
    }, logits)


if __name__ == "__main__":
    torch.manual_seed(0)
    recorders = {**dict.fromkeys(MODELS, record), **dict.fromkeys(NPZ_MODELS, record_npz),
                 **dict.fromkeys(TORCHVISION_MODELS, record_torchvision)}
    for model_name in sys.argv[1:] or recorders:
        print("wrote", recorders[model_name](model_name))
