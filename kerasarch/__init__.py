"""kerasarch: the classic CNN architectures as clear Keras 3 Functional-API models.

Every architecture is one function returning a `keras.Model` that takes raw images:

    import kerasarch
    model = kerasarch.vgg16(include_top=True, weights=None)
    kerasarch.list_models()

Importing the package is cheap: TensorFlow and Keras load on first use of a builder or of
the registry (PEP 562 module `__getattr__`), so the command line starts fast. Every
registered name is an attribute (`kerasarch.vgg16_bn`, ...), read from the registry.

`import kerasarch` is still enough for `keras.saving.load_model` to read the `.keras` files
kerasarch writes: its serializable layers are registered as soon as Keras is imported (at
once if it already is; see `_register_serializables_with_keras`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

__version__ = "0.1.0"

# Names served from the registry module; the builders come from `registry.builder(name)`.
_REGISTRY_API = ("ModelInfo", "ParamCounts", "Recipe", "get_model", "list_models", "model_info")
# Functions of a family module served at the top level (`kerasarch.compound_scaling(phi)`).
_FAMILY_API = {"compound_scaling": "efficientnet_scaling", "efficientnet": "efficientnet_scaling"}
_SUBMODULES = (
    "augment", "blocks", "cli", "data", "download", "export", "heads", "layers", "models", "preprocessing",
    "registry", "train", "weights",
)


def _registry():
    # The registry imports the families (and so Keras) on first use, not here.
    return importlib.import_module("kerasarch.registry")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "__all__":
        return [*_REGISTRY_API, *_FAMILY_API, *_registry().list_models()]
    if name in _REGISTRY_API:
        return getattr(_registry(), name)
    if name in _FAMILY_API:
        return getattr(importlib.import_module(f"{__name__}.models.{_FAMILY_API[name]}"), name)
    if not name.startswith("_"):
        registry = _registry()
        if name in registry.list_models():
            return registry.builder(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *__getattr__("__all__")})


# Modules whose layers are registered with `keras.saving.register_keras_serializable`; they
# import Keras alone (no TensorFlow module), so they can load while TensorFlow imports Keras.
_SERIALIZABLE_MODULES = ("kerasarch.layers", "kerasarch.augment")


def _register_serializables() -> None:
    for module in _SERIALIZABLE_MODULES:
        importlib.import_module(module)


class _RegisteringLoader(importlib.abc.Loader):
    """Keras' own loader, followed by the import of kerasarch's layer modules."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterKerasImport)]
        _register_serializables()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers kerasarch's layers right after `keras` itself is imported.

    Keras finds a custom class of a `.keras` file only when its module was imported (it
    imports modules by name for its own packages alone), and importing kerasarch's layers
    imports Keras, which this package does not do eagerly. So this finder gives the import
    of `keras` (by the user, or by TensorFlow's own start-up) a loader that runs Keras'
    loader and then imports the layer modules. It stays installed until Keras is loaded:
    a mere `importlib.util.find_spec("keras")`, as TensorFlow makes, loads nothing.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and not isinstance(spec.loader, _RegisteringLoader):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _register_serializables_with_keras() -> None:
    if "keras" in sys.modules:
        _register_serializables()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())


_register_serializables_with_keras()
