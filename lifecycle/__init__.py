"""ML Lifecycle Lab: the library behind the course notebooks, in two layers.

The fraud system's stages, in the order data flows: :mod:`~lifecycle.data`, :mod:`~lifecycle.versioning`,
:mod:`~lifecycle.features`, :mod:`~lifecycle.training`, :mod:`~lifecycle.tracking`, :mod:`~lifecycle.pipeline`,
:mod:`~lifecycle.serving`, :mod:`~lifecycle.canary`, :mod:`~lifecycle.monitoring` (with the private helpers
they share, :mod:`~lifecycle._proc` and :mod:`~lifecycle._shell`). The course built on them,
:mod:`lifecycle.course`, which no stage imports. :mod:`~lifecycle.cli` is the ``lifecycle`` command.

The public API here is small and loads lazily, so that ``import lifecycle`` (and the
``lifecycle`` command's ``--help``) stays instant; each package's ``__all__`` lists the rest.
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
    "generate_transactions": "lifecycle.data.generator",
    "read_transactions": "lifecycle.data.schema",
    "write_transactions": "lifecycle.data.schema",
    "LifecycleError": "lifecycle.errors",
    "ConfigError": "lifecycle.errors",
    "SchemaError": "lifecycle.errors",
    "CommandError": "lifecycle.errors",
    "NotebookError": "lifecycle.errors",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle", _EXPORTS, globals())
