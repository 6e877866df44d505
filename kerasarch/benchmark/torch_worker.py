"""The PyTorch peer of `kerasarch benchmark`, a standalone script run by any python with PyTorch.

    /path/to/torch-venv/bin/python torch_worker.py

It imports only the standard library and numpy at the top, and torch / torchvision (timm
where installed) when it starts serving, never TensorFlow or kerasarch: PyTorch lives in
its own environment, and the parent (`kerasarch.benchmark.torch_peer`) talks to it through
one JSON object per line, on stdin (requests) and stdout (replies). The worker computes
only when asked; between requests it waits on stdin, so it never runs while TensorFlow does.

Requests and their replies (every reply has `"ok"`; a failed one `"error"` and `"message"`):

- on start, unasked: `{"ok": true, "ready": true, "torch": version, "torchvision": version,
  "timm": version or null}`, or `{"ok": false, "error": "import", ...}` and exit status 3;
- `{"cmd": "load", "id": KEY, "model": NAME, "batch_size": B, "height": H, "width": W,
  "precision": "fp32"|"bf16", "threads": N, "warmup": 2}`: builds the torchvision (else timm)
  model NAME, random init, and calls it `warmup` times on B random NHWC float32 pixels;
  `{"ok": true, "id": KEY, "seconds": build and warm-up}`, or the error `"unknown_model"`;
- `{"cmd": "run", "id": KEY, "seconds": T}`: calls the model for about T seconds (at least
  once) and replies `{"ok": true, "calls": n, "seconds": s}`, s measured here, around the
  calls only (no pipe round trip);
- `{"cmd": "unload", "id": KEY}`; `{"cmd": "quit"}` (also end of input): replies, then exits 0.
"""

from __future__ import annotations

import json
import os
import sys

# Run as a script, this folder heads sys.path, and its modules (timing.py, precision.py...)
# would shadow any top-level module of those names that PyTorch or timm imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import IO  # noqa: E402

import numpy as np  # noqa: E402

PRECISIONS = ("fp32", "bf16")
# ImageNet mean and standard deviation, in [0, 255] pixels (torchvision's and timm's convention).
MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# make(name, batch_size, height, width, precision, threads) -> a call of the model on its batch,
# or None where no library has a model of that name.
Maker = Callable[[str, int, int, int, str, int], "Callable[[], object] | None"]


class UnknownModelError(Exception):
    """No torchvision or timm model of that name."""


def pixels(batch_size: int, height: int, width: int) -> np.ndarray:
    """Random NHWC float32 pixels in [0, 255], as the parent's contenders get."""
    return np.random.default_rng(0).uniform(0, 255, (batch_size, height, width, 3)).astype(np.float32)


def torch_maker() -> tuple[Maker, dict[str, str | None]]:
    """The maker of torchvision / timm models, and the libraries' versions (imports PyTorch)."""
    import torch
    import torchvision

    try:
        import timm
    except ImportError:
        timm = None

    def builder(name: str):
        if name in torchvision.models.list_models(module=torchvision.models):
            return lambda: torchvision.models.get_model(name)
        if timm is not None and name in timm.list_models():
            return lambda: timm.create_model(name)
        return None

    def make(name: str, batch_size: int, height: int, width: int, precision: str, threads: int):
        build = builder(name)
        if build is None:
            return None
        torch.set_num_threads(threads)
        model = build().eval()
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        images = pixels(batch_size, height, width)

        def call():
            # the transpose and the normalization are timed with the model, as kerasarch's
            # in-graph preprocessing is
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                batch = torch.from_numpy(images).permute(0, 3, 1, 2)
                return model((batch - mean) / std).float().numpy()

        return call

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "timm": getattr(timm, "__version__", None)}
    return make, versions


def _int(request: dict, key: str, default: int | None = None) -> int:
    value = request.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Invalid value for `{key}`: {value!r}. Expected an integer >= 1.")
    return value


class Worker:
    """The protocol's state: the loaded models by key, and how to make one."""

    def __init__(self, make: Maker, clock: Callable[[], float] = time.perf_counter):
        self.make, self.clock = make, clock
        self.models: dict[str, Callable[[], object]] = {}

    def load(self, request: dict) -> dict:
        """Builds and warms up a model; the reply carries the seconds that took."""
        name, precision = request.get("model"), request.get("precision", "fp32")
        if not isinstance(name, str) or precision not in PRECISIONS:
            raise ValueError(f"Invalid load request {request!r}: `model` must be a name and `precision` "
                             f"one of {PRECISIONS}.")
        start = self.clock()
        call = self.make(name, _int(request, "batch_size"), _int(request, "height"), _int(request, "width"),
                         precision, _int(request, "threads", 1))
        if call is None:
            raise UnknownModelError(f"torchvision / timm have no model named {name!r}.")
        for _ in range(_int(request, "warmup", 2)):
            call()
        self.models[str(request.get("id", name))] = call
        return {"ok": True, "id": request.get("id", name), "seconds": self.clock() - start}

    def run(self, request: dict) -> dict:
        """Calls a loaded model for about `seconds`; the reply carries calls and seconds."""
        call = self._model(request)
        target = request.get("seconds")
        if not isinstance(target, int | float) or isinstance(target, bool) or not target > 0:
            raise ValueError(f"Invalid value for `seconds`: {target!r}. Expected a number > 0.")
        calls, start = 0, self.clock()
        while True:
            call()
            calls += 1
            seconds = self.clock() - start
            if seconds >= target:
                return {"ok": True, "id": request["id"], "calls": calls, "seconds": seconds}

    def unload(self, request: dict) -> dict:
        """Forgets a loaded model."""
        self._model(request)
        del self.models[request["id"]]
        return {"ok": True, "id": request["id"]}

    def _model(self, request: dict) -> Callable[[], object]:
        if request.get("id") not in self.models:
            raise ValueError(f"No model loaded as {request.get('id')!r}; loaded: {sorted(self.models)}.")
        return self.models[request["id"]]

    def answer(self, line: str) -> dict:
        """The reply to one request line (errors become replies; the loop never dies of one)."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError(f"A request is a JSON object; got {line.strip()!r}.")
            command = request.get("cmd")
            handlers = {"load": self.load, "run": self.run, "unload": self.unload}
            if command == "quit":
                return {"ok": True, "quit": True}
            if command not in handlers:
                raise ValueError(f"Unknown command {command!r}; expected one of {[*handlers, 'quit']}.")
            return handlers[command](request)
        except UnknownModelError as error:
            return {"ok": False, "error": "unknown_model", "message": str(error)}
        except Exception as error:  # noqa: BLE001 - any failure is the parent's to report
            traceback.print_exc(file=sys.stderr)
            return {"ok": False, "error": type(error).__name__, "message": str(error)}


def serve(lines: Iterable[str], out: IO[str], make: Maker,
          clock: Callable[[], float] = time.perf_counter) -> None:
    """Answers request lines until `quit` or the end of input, one JSON reply line each."""
    worker = Worker(make, clock)
    for line in lines:
        if not line.strip():
            continue
        reply = worker.answer(line)
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if reply.get("quit"):
            return


def main() -> int:
    """Imports PyTorch, says it is ready (or why not), and serves stdin."""
    # The protocol keeps its own copy of stdout; file descriptor 1 itself then goes to stderr,
    # so that nothing the libraries print (Python or C) can reach the protocol.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        make, versions = torch_maker()
    except Exception as error:  # noqa: BLE001 - ImportError, or a broken install's any error
        out.write(json.dumps({"ok": False, "error": "import", "message": f"{type(error).__name__}: {error}"})
                  + "\n")
        out.flush()
        return 3
    out.write(json.dumps({"ok": True, "ready": True, **versions}) + "\n")
    out.flush()
    try:
        serve(sys.stdin, out, make)
    except (KeyboardInterrupt, BrokenPipeError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
