"""`precision="auto"`: the faster of fp32 and mixed_bfloat16 inference, measured once and cached.

The cache is one JSON file, `kerasarch-precision.json` in `$KERASARCH_CACHE_DIR` where that
is set, else in `kerasarch.download.cache_dir()`. Each entry is keyed by model, batch size,
input size, the machine (CPU model string and core count) and the TensorFlow version, so a
new machine or a TensorFlow upgrade measures again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kerasarch.benchmark import timing

CACHE_ENV = "KERASARCH_CACHE_DIR"
CACHE_FILE = "kerasarch-precision.json"
# bf16 is chosen only where it is faster by more than this: on a tie fp32 keeps full precision.
BF16_MARGIN = 1.02


def cache_path() -> Path:
    """The cache file: under `$KERASARCH_CACHE_DIR`, else `kerasarch.download.cache_dir()`."""
    from kerasarch import download

    folder = os.environ.get(CACHE_ENV)
    return (Path(folder).expanduser() if folder else download.cache_dir()) / CACHE_FILE


def cache_key(name: str, batch_size: int, image_size: int | None, machine: dict) -> str:
    """The entry's key: model, batch, input size, CPU model, cores and TensorFlow version."""
    size = image_size or "native"
    return (f"{name}|batch {batch_size}|size {size}|{machine['cpu']}|{machine['cores']} cores|"
            f"tf {machine['tensorflow']}")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measure(name: str, batch_size: int, image_size: int | None = None, rounds: int = 3,
            target_seconds: float = 0.3) -> timing.Spread:
    """bf16 over fp32 inference images/s of a kerasarch model, interleaved over `rounds`."""
    import numpy as np

    from kerasarch.benchmark import runners

    fp32 = runners.build(name, image_size)
    bf16 = runners.build(name, image_size, "bf16", weights_from=fp32)
    shape = runners.input_shape(name, image_size)
    images = np.random.default_rng(0).uniform(0, 255, (batch_size, *shape)).astype(np.float32)
    predicts = {"fp32": runners.tf_predict(fp32), "bf16": runners.tf_predict(bf16)}
    contenders = [timing.Contender(label, lambda p=p: p(images), batch_size) for label, p in predicts.items()]
    rates = timing.interleave(contenders, rounds, target_seconds)
    return timing.ratios(rates, "fp32")["bf16"]


def best_precision(name: str, batch_size: int, image_size: int | None = None,
                   remeasure: bool = False) -> str:
    """The faster precision for TensorFlow inference of `name` at `batch_size` on this machine.

    Measured once (a few interleaved rounds of fp32 and mixed_bfloat16 inference) and cached;
    later calls with the same model, batch, input size, machine and TensorFlow version read
    the cache.

    Args:
        name: A registered model name.
        batch_size: Images per inference call.
        image_size: Square input size; default the model's native size.
        remeasure: Measure again even where the cache has an answer.

    Returns:
        `"bf16"` where mixed_bfloat16 was faster (median ratio over rounds above
        `BF16_MARGIN`, so that a tie keeps fp32), else `"fp32"`.

    Raises:
        ValueError: An unknown model name or a batch size below 1.
    """
    from kerasarch import registry
    from kerasarch.benchmark import runners

    registry.model_info(name)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Invalid value for argument `batch_size`: {batch_size!r}. "
                         "Expected an integer >= 1.")
    path = cache_path()
    key = cache_key(name, batch_size, image_size, runners.machine())
    cached = _read(path)
    if not remeasure and key in cached:
        return cached[key]["precision"]
    ratio = measure(name, batch_size, image_size)
    choice = "bf16" if ratio.median > BF16_MARGIN else "fp32"
    cached = _read(path)  # another process may have written meanwhile
    cached[key] = {"precision": choice, "bf16_over_fp32": ratio.as_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(cached, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)
    return choice
