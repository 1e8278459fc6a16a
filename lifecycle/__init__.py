"""ML Lifecycle Lab: the library behind the course notebooks.

The public API is small and loads lazily, so that ``import lifecycle`` (and the
``lifecycle`` command's ``--help``) stays instant; each stage's module holds the rest.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

__version__ = "0.1.0"

# name → module that defines it
_EXPORTS = {
    "Settings": "lifecycle.config",
    "load_settings": "lifecycle.config",
    "record": "lifecycle.course.runner",
    "run_course": "lifecycle.course.runner",
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

__getattr__, __dir__ = lazy_exports("lifecycle", _EXPORTS, globals())
