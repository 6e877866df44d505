"""Optional dependencies: importing them with an error that names the extra to install.

No TensorFlow import here: the command line catches `MissingExtraError` before anything
heavy is loaded.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional package is not installed; the message says which extra provides it."""


def require(module: str, what: str, extra: str = "runtimes", package: str | None = None) -> ModuleType:
    """Imports an optional module, or raises `MissingExtraError` naming the extra.

    Args:
        module: The module to import (`"onnxruntime"`).
        what: The feature that needs it, for the message (`"ONNX export"`).
        extra: The kerasarch extra that installs it.
        package: The pip package, where its name differs from the module's.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: If the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{what} needs the `{package or module}` package, which is not installed: "
            f"`python -m pip install 'kerasarch[{extra}]'` installs it ({error})."
        ) from error
