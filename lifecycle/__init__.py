"""ML Lifecycle Lab: the library behind the course notebooks.

The public API is small and loads lazily, so that ``import lifecycle`` (and the
``lifecycle`` command's ``--help``) stays instant; each stage's module holds the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# name → module that defines it
_EXPORTS = {
    "Settings": "lifecycle.config",
    "load_settings": "lifecycle.config",
    "record": "lifecycle.runner",
    "run_course": "lifecycle.runner",
    "generate_transactions": "lifecycle.data",
    "read_transactions": "lifecycle.data",
    "write_transactions": "lifecycle.data",
    "LifecycleError": "lifecycle.errors",
    "ConfigError": "lifecycle.errors",
    "SchemaError": "lifecycle.errors",
    "CommandError": "lifecycle.errors",
    "NotebookError": "lifecycle.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
