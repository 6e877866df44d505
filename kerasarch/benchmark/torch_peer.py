"""The PyTorch peer, run in its own process: which python, the worker's lifetime, its contenders.

PyTorch is never a kerasarch dependency and never imported here. `find_python` picks a
python that has it; `TorchWorker` starts `torch_worker.py` under it (one process per
benchmark), loads torchvision / timm models there and times them on request. Each loaded
model becomes a `timing.Contender` whose turn asks the worker to run for the round's
seconds and takes the calls and seconds the worker measured itself, so torch rounds
alternate with TensorFlow's round by round, and the pipe's round trip is not counted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kerasarch.benchmark import timing

ENV = "KERASARCH_TORCH_PYTHON"
WORKER = Path(__file__).with_name("torch_worker.py")
WAYS = (f"pass --torch-python PATH (`torch_python=` in Python), set {ENV} to a python that has "
        "torch and torchvision, or install them in this environment")


class TorchUnavailableError(ValueError):
    """No python with PyTorch and torchvision was found, or the one named has none."""


def find_python(torch_python: str | os.PathLike | None = None) -> tuple[str, str]:
    """The python to run the worker with, and where that choice came from.

    Args:
        torch_python: A python executable that has torch and torchvision; default the
            environment variable `KERASARCH_TORCH_PYTHON`, else this python when torch and
            torchvision are installed in it.

    Returns:
        `(path, source)`, `source` naming the way it was chosen (for error messages).

    Raises:
        TorchUnavailableError (a ValueError): a named python that does not exist, or none at all.
    """
    for value, source in ((torch_python, "--torch-python"), (os.environ.get(ENV) or None, ENV)):
        if value is None:
            continue
        path = Path(value).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise TorchUnavailableError(f"Invalid value for {source}: {str(value)!r} is not an executable "
                                        "file. Expected the path of a python that has torch and torchvision.")
        return str(path), source
    if installed_here():
        return sys.executable, "this python"
    raise TorchUnavailableError(
        "Invalid value for argument `against`: 'torch', but no python with PyTorch and torchvision "
        f"was found (kerasarch never depends on them): {WAYS}; or use --against keras.")


def installed_here() -> bool:
    """Whether torch and torchvision are installed in this python (found, not imported)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))


def tf_threads() -> int:
    """The intra-op threads TensorFlow computes with (its setting, else the CPU count)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1


class TorchWorker:
    """One worker process; a context manager that always ends it (quit, then kill)."""

    def __init__(self, python: str, source: str = "--torch-python", threads: int | None = None,
                 timeout: float = 300.0):
        self.python, self.source, self.timeout = python, source, timeout
        self.threads = threads or os.cpu_count() or 1
        self.versions: dict = {}
        self._stderr = tempfile.TemporaryFile(mode="w+")
        # Its own session: a Ctrl-C in the terminal reaches this process only, which then
        # ends the worker (close); the worker also ends when its stdin closes with us.
        self.process = subprocess.Popen(
            [python, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, bufsize=1, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            ready = self._read()
        except RuntimeError as error:
            self.close()
            raise TorchUnavailableError(f"Invalid value for {source}: {python} could not start the PyTorch "
                                        f"worker ({error}); {WAYS}.") from None
        if not ready.get("ok"):
            self.close()
            raise TorchUnavailableError(f"Invalid value for {source}: torch and torchvision do not import in "
                                        f"{python} ({ready.get('message')}); {WAYS}.")
        self.versions = {k: ready.get(k) for k in ("torch", "torchvision", "timm")}

    def __enter__(self) -> TorchWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stderr_tail(self, chars: int = 2000) -> str:
        """The end of what the worker wrote to stderr (tracebacks, library warnings)."""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()[-chars:]
        self._stderr.seek(0, os.SEEK_END)  # the worker shares this offset
        return text

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=self.timeout)
            raise RuntimeError(f"the worker exited with status {self.process.returncode}: "
                               f"{self.stderr_tail().strip() or 'no message'}")
        return json.loads(line)

    def request(self, **request) -> dict:
        """Sends one request and returns the worker's reply.

        Raises:
            RuntimeError: The worker is gone (it crashed, or was closed).
        """
        if self.process.poll() is not None:
            raise RuntimeError(f"The PyTorch worker has exited (status {self.process.returncode}).")
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.process.wait(timeout=self.timeout)
        return self._read()

    def load(self, key: str, name: str, batch_size: int, height: int, width: int, precision: str,
             warmup: int = 2) -> str | None:
        """Loads (and warms up) a model as `key`; returns None, or why it cannot (a note)."""
        reply = self.request(cmd="load", id=key, model=name, batch_size=batch_size, height=height,
                             width=width, precision=precision, threads=self.threads, warmup=warmup)
        if reply["ok"]:
            return None
        if reply["error"] == "unknown_model":
            return reply["message"]
        return f"torch {name} {precision}: not measured; the worker failed: {reply['message']}"

    def measure(self, key: str, seconds: float) -> tuple[int, float]:
        """Runs the model `key` for about `seconds`: `(calls, seconds measured in the worker)`."""
        reply = self.request(cmd="run", id=key, seconds=seconds)
        if not reply["ok"]:
            raise RuntimeError(f"The PyTorch worker failed to run {key!r}: {reply['message']}")
        return reply["calls"], reply["seconds"]

    def contender(self, name: str, key: str, work: float) -> timing.Contender:
        """A contender timed by the worker (`interleave` gives it each turn's seconds)."""
        return timing.Contender(name, None, work, measure=lambda seconds: self.measure(key, seconds))

    def unload(self, key: str) -> None:
        """Frees a loaded model."""
        self.request(cmd="unload", id=key)

    def close(self) -> None:
        """Asks the worker to quit, waits a little, kills it if it does not; idempotent."""
        try:
            if self.process.poll() is None:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        finally:  # also when interrupted while waiting: no orphan
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self._stderr.close()
