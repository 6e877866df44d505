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
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import timm
import torch

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
}


def record(name: str) -> Path:
    """Builds, fills and runs one reference model; writes its golden file."""
    architecture, seed, input_shape = MODELS[name]
    model = timm.create_model(architecture, pretrained=False).eval()
    table = [[key, list(value.shape), str(value.dtype).removeprefix("torch.")]
             for key, value in model.state_dict().items()]
    state = {key: torch.from_numpy(value) for key, value in make_state(table, seed).items()}
    model.load_state_dict(state, strict=True)
    cfg = model.pretrained_cfg
    images = make_inputs(input_shape, seed).astype(np.float32) / 255.0
    x = (images - np.array(cfg["mean"], np.float32)) / np.array(cfg["std"], np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    golden = {
        "variant": name,
        "architecture": architecture,
        "made_with": {"torch": torch.__version__, "timm": timm.__version__},
        "recipe": RECIPE,
        "seed": seed,
        "pretrained_cfg": {k: cfg[k] for k in ("mean", "std", "interpolation", "crop_pct", "input_size")},
        "num_classes": int(logits.shape[1]),
        "tensors": table,
        "input_shape": input_shape,
        "logits": [[float(f"{v:.7g}") for v in row] for row in logits],
    }
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    return path


if __name__ == "__main__":
    torch.manual_seed(0)
    for model_name in sys.argv[1:] or MODELS:
        print("wrote", record(model_name))
