"""Lazy public APIs for the kit's packages (PEP 562), so importing a package stays instant."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """Module-level ``__getattr__`` and ``__dir__`` that import each public name on first use.

    Args:
        package: the package's name, for the error message.
        exports: public name → the module that defines it.
        namespace: the package's ``globals()``; a loaded name is cached there.

    Returns:
        ``(__getattr__, __dir__)`` for the package to assign.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
