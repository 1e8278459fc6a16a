"""The kit's exceptions: one base class, one subclass per kind of mistake.

Every message names what was wrong, the value given, and what to do about it.

    LifecycleError
    ├── ConfigError        a setting or parameter has a bad value
    ├── SchemaError        a data file or record does not have the expected columns/types
    ├── CommandError       an external tool (git, dvc, a server) failed
    └── NotebookError      a lesson notebook failed while the course runner executed it
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base class of every error the kit raises on purpose."""


class ConfigError(LifecycleError, ValueError):
    """A setting, profile or parameter has a value the kit cannot use."""


class SchemaError(LifecycleError, ValueError):
    """A table or record is missing columns, or holds values of the wrong type."""


class CommandError(LifecycleError, RuntimeError):
    """An external command (git, dvc, a server process) failed.

    Attributes:
        command: the argument list that ran.
        returncode: its exit status.
        output: what it printed (stdout and stderr, combined).
    """

    def __init__(self, message: str, command: list[str] | None = None, returncode: int | None = None,
                 output: str = "") -> None:
        super().__init__(message)
        self.command = command or []
        self.returncode = returncode
        self.output = output


class NotebookError(LifecycleError, RuntimeError):
    """A notebook failed under the course runner.

    Attributes:
        notebook: the notebook's name, e.g. ``03_experiment_tracking``.
        cell: the index of the failing cell (0-based, as nbformat counts), or None.
        error: the exception name and value raised in that cell.
    """

    def __init__(self, notebook: str, cell: int | None, error: str, executed: str = "") -> None:
        where = f"cell {cell}" if cell is not None else "before any cell ran"
        hint = f"; the executed notebook with its outputs is {executed}" if executed else ""
        super().__init__(f"notebook {notebook} failed at {where}: {error}{hint}")
        self.notebook = notebook
        self.cell = cell
        self.error = error
        self.executed = executed
