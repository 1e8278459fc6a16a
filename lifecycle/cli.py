"""The ``lifecycle`` command.

The parser is plain argparse and imports nothing heavy, so ``lifecycle --help`` answers at
once; each subcommand names its handler as ``"module:function"``, imported only when that
subcommand runs. A handler takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="execute the lesson notebooks in order with papermill")
    run.add_argument("--profile", default="smoke", help="parameter profile from params.yaml (smoke|full)")
    run.add_argument("--only", action="append", metavar="01,03",
                     help="run only these notebooks (numbers or names, comma-separated)")
    run.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                     help="override a notebook parameter (repeatable), e.g. -p seed=7")
    run.add_argument("--out", default=None, help="folder for executed notebooks and summary.json (default build/)")
    run.add_argument("--cell-timeout", type=int, default=300, help="seconds any one cell may run (default 300)")
    run.add_argument("--no-progress", action="store_true", help="hide the per-cell progress bar")
    run.set_defaults(handler="lifecycle.runner:main_run")


def _add_data(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="generate transaction data")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    generate = actions.add_parser("generate", help="write a seeded transactions CSV")
    generate.add_argument("--rows", type=int, default=50_000, help="number of transactions (default 50000)")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument("--scenario", default="baseline", choices=("baseline", "data_drift", "concept_drift"),
                          help="drift scenario (default baseline)")
    generate.add_argument("--start", default="2026-01-01", help="first day of the window (YYYY-MM-DD)")
    generate.add_argument("--days", type=int, default=30, help="length of the window in days (default 30)")
    generate.add_argument("--users", type=int, default=2_000, help="size of the customer population (default 2000)")
    generate.add_argument("--out", required=True, help="CSV file to write")
    generate.set_defaults(handler="lifecycle.data:generate_command")


def _add_progress(commands: argparse._SubParsersAction) -> None:
    progress = commands.add_parser("progress", help="print a learner's quiz score per lesson")
    progress.add_argument("--learner", default=None,
                          help="whose answers (default: $LIFECYCLE_LEARNER, $JUPYTERHUB_USER or your user name)")
    progress.add_argument("--json", action="store_true", help="print the scores as JSON")
    progress.set_defaults(handler="lifecycle.progress:progress_command")


# One function per subcommand, in the order `lifecycle --help` lists them.
SUBCOMMANDS = [_add_run, _add_data, _add_progress]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lifecycle`` command."""
    parser = argparse.ArgumentParser(
        prog="lifecycle", description="ML Lifecycle Lab: run the course, generate data, serve and monitor models.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for add in SUBCOMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lifecycle`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    module, _, function = args.handler.partition(":")
    from lifecycle.errors import LifecycleError

    try:
        return int(getattr(import_module(module), function)(args) or 0)
    except LifecycleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
