"""Strategies by name and version: ``register`` a class, ``get_strategy`` it back, ``list_strategies`` for APIs."""

from __future__ import annotations

import importlib
import os
from typing import Any, TypeVar

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.strategies.base import Strategy

S = TypeVar("S", bound=type[Strategy])

_REGISTRY: dict[tuple[str, str], type[Strategy]] = {}


class UnknownStrategyError(InvalidInputError, LookupError):
    """No strategy registered under that name (and version); ``field`` names the input at fault."""


def register(cls: S) -> S:
    """Class decorator: make a strategy available by ``(cls.name, cls.version)``."""
    key = (cls.name, cls.version)
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"strategy {cls.name!r} version {cls.version!r} is already registered")
    _REGISTRY[key] = cls
    return cls


def _version_key(v: str) -> tuple[int, ...] | tuple[float, str]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (float("inf"), v)


def get_strategy(name: str, version: str | None = None) -> Strategy:
    """An instance of the strategy ``name`` (newest version unless ``version`` is given)."""
    _load_builtins()
    if version is not None:
        cls = _REGISTRY.get((name, version))
        if cls is None:
            raise UnknownStrategyError(f"unknown strategy {name!r} version {version!r}", field="strategy_version")
        return cls()
    versions = [v for (n, v) in _REGISTRY if n == name]
    if not versions:
        known = ", ".join(sorted({n for n, _ in _REGISTRY}))
        raise UnknownStrategyError(f"unknown strategy {name!r} (known: {known})", field="strategy")
    return _REGISTRY[(name, max(versions, key=_version_key))]()


def list_strategies() -> list[dict[str, Any]]:
    """Every registered strategy with its parameter JSON schema (what ``GET /api/v1/strategies`` returns)."""
    _load_builtins()
    return [
        {
            "name": cls.name,
            "version": cls.version,
            "description": cls.description,
            "vectorised": cls.has_signals(),
            "params_schema": cls.params_schema(),
        }
        for (_, _), cls in sorted(_REGISTRY.items())
    ]


#: Modules of the user's own strategies, imported (and so registered) with the built-ins: comma-separated
#: importable names in this environment variable — so the API, workers and the live runner all know them.
MODULES_VARIABLE = "STRATEGY_MODULES"
_loaded: set[str] = set()


class StrategyModuleError(InvalidInputError):
    """A module named in ``STRATEGY_MODULES`` cannot be imported."""


def _load_builtins() -> None:
    from kalshi_analytics.strategies import builtin  # noqa: F401  (registers on import)

    for name in (n.strip() for n in os.environ.get(MODULES_VARIABLE, "").split(",")):
        if not name or name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # one line for the user: which module, why
            raise StrategyModuleError(f"{MODULES_VARIABLE}: cannot import {name!r}: {exc}") from None
        _loaded.add(name)
