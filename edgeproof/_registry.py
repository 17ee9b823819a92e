"""The model registry. Model files live in edgeproof.train.models, one file per model, and each
calls `register(ModelSpec(...))` once at import. Importing the registry loads numpy only."""
from __future__ import annotations

import importlib
import pkgutil

from ._spec import ModelSpec
from .errors import UnknownModelError

_REGISTRY: dict[str, ModelSpec] = {}
_SPEC_PACKAGE = "edgeproof.train.models"
_discovered = False


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec. A second spec with the same name is an error, not an overwrite."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    package = importlib.import_module(_SPEC_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{_SPEC_PACKAGE}.{info.name}")
    _discovered = True


def model_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(name, sorted(_REGISTRY)) from None


def all_specs() -> list[ModelSpec]:
    return [get_spec(n) for n in model_names()]


def training_order(names: list[str] | None = None) -> list[str]:
    """`names` (default: all) ordered so that every model comes after the models it requires."""
    wanted = model_names() if names is None else [get_spec(n).name for n in names]
    ordered: list[str] = []

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        if name in ordered:
            return
        if name in stack:
            raise ValueError(f"models require each other in a cycle: {' -> '.join(stack + (name,))}")
        for dep in get_spec(name).requires:
            if dep in wanted:
                visit(dep, stack + (name,))
        ordered.append(name)

    for name in wanted:
        visit(name)
    return ordered
