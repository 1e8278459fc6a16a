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
    run.add_argument("--no-progress", action="store_true", help="print no line per notebook (the summary table stays)")
    run.add_argument("--backends", choices=("embedded", "services"), default="embedded",
                     help="embedded (default: local folder, sqlite, Prefect's own server) or services (the "
                          "backends 'lifecycle services up' started, from workspace/services.env)")
    run.set_defaults(handler="lifecycle.course.runner:main_run")


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
    generate.add_argument("--drift-day", type=int, default=0, metavar="DAY",
                          help="quiet days before the scenario starts (default 0: from the first day)")
    generate.add_argument("--ramp-days", type=float, default=0,
                          help="days over which the drift grows to full strength (default 0: sudden)")
    generate.add_argument("--out", required=True, help="CSV file to write")
    generate.set_defaults(handler="lifecycle.data.generator:generate_command")


def _add_progress(commands: argparse._SubParsersAction) -> None:
    progress = commands.add_parser("progress", help="print a learner's quiz score per lesson")
    progress.add_argument("--learner", default=None,
                          help="whose answers (default: $LIFECYCLE_LEARNER, $JUPYTERHUB_USER or your user name)")
    progress.add_argument("--json", action="store_true", help="print the scores as JSON")
    progress.set_defaults(handler="lifecycle.course.progress:progress_command")


def _add_serve(commands: argparse._SubParsersAction) -> None:
    from lifecycle.serving.command import add_serve_arguments  # argparse only: --help stays instant

    serve = commands.add_parser("serve", help="serve the registry's model over REST or gRPC")
    add_serve_arguments(serve)
    serve.set_defaults(handler="lifecycle.serving.command:serve_command")


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="run a benchmark; results go to benchmarks/results/")
    which = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    which.required = True
    serving = which.add_parser("serving", help="tutorial vs our REST and gRPC servers vs the batch endpoint")
    serving.add_argument("--seconds", type=float, default=3.0, help="load time per configuration (default 3)")
    serving.add_argument("--rounds", type=int, default=3, help="interleaved rounds, median kept (default 3)")
    serving.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    serving.add_argument("--model", default=None, metavar="URI", help="registry URI (default: the champion)")
    serving.add_argument("--out", default=None, help="results file (default benchmarks/results/serving.json)")
    serving.set_defaults(handler="lifecycle.course.serving_bench:bench_command")


def _add_monitor(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser("monitor", help="check a window of traffic against the champion, or serve the "
                                                  "monitoring dashboard ('monitor ui')")
    monitor.add_argument("action", nargs="?", choices=("check", "ui"), default="check",
                         help="check (default): one monitoring check; ui: Evidently's UI over the workspace")
    monitor.add_argument("--current", default=None, metavar="PATH.csv",
                         help="check: transactions to check (as 'data generate' writes them); an is_fraud column is "
                              "taken as labels that have arrived")
    monitor.add_argument("--model-uri", default=None,
                         help="check: registered model (default models:/<registered_model>@champion)")
    monitor.add_argument("--report", default=None,
                         help="check: HTML report to write (default workspace/reports/monitor-<current>.html)")
    monitor.add_argument("--json", default=None, metavar="PATH", help="check: also write the decision as JSON")
    monitor.add_argument("--alpha", type=float, default=0.05,
                         help="check: false-alarm rate of each kind of alarm (default 0.05)")
    monitor.add_argument("--exit-code", action="store_true",
                         help="check: exit 0 (no action), 3 (alert) or 4 (retrain), for a scheduler")
    monitor.add_argument("--workspace", default=None,
                         help="ui: the Evidently workspace (default workspace/monitoring, which lesson 07 fills)")
    monitor.add_argument("--host", default="127.0.0.1", help="ui: address to bind (default 127.0.0.1)")
    monitor.add_argument("--port", type=int, default=8085, help="ui: port (default 8085)")
    monitor.set_defaults(handler="lifecycle.cli:_monitor")


def _monitor(args: argparse.Namespace) -> int:
    """Route ``lifecycle monitor [check|ui]`` to its handler (imported only when it runs)."""
    module, function = (("lifecycle.monitoring.dashboard", "ui_command") if args.action == "ui"
                        else ("lifecycle.monitoring.retraining", "monitor_command"))
    return getattr(import_module(module), function)(args)


def _add_site(commands: argparse._SubParsersAction) -> None:
    site = commands.add_parser("site", help="build a static HTML site of the executed course (after 'lifecycle run')")
    site.add_argument("--build", default=None, metavar="FOLDER",
                      help="the run to publish: its summary.json and notebooks/ (default build/)")
    site.add_argument("--out", default=None, metavar="FOLDER", help="where the site goes (default <build>/site)")
    site.set_defaults(handler="lifecycle.course.site:site_command")


def _add_grade(commands: argparse._SubParsersAction) -> None:
    grade = commands.add_parser("grade", help="grade a class's exercise notebooks into a gradebook")
    grade.add_argument("submissions", nargs="?", default=None, metavar="SUBMISSIONS_DIR",
                       help="one folder per learner, holding that learner's exercise notebooks")
    grade.add_argument("--solutions", action="store_true",
                       help="grade the instructor solutions instead (every case must pass)")
    grade.add_argument("--out", default=None, metavar="gradebook.csv",
                       help="the gradebook CSV; the HTML summaries go beside it (default build/gradebook/)")
    grade.add_argument("--timeout", type=float, default=60.0,
                       help="seconds one notebook may run, all its cells together (default 60)")
    grade.add_argument("--jobs", type=int, default=2, help="notebooks graded at once, one kernel each (default 2)")
    grade.set_defaults(handler="lifecycle.course.grade:grade_command")


def _add_services(commands: argparse._SubParsersAction) -> None:
    services = commands.add_parser("services", help="start, stop or check the team's backends on this machine "
                                                    "(S3 store, MLflow server, Prefect server and worker)")
    actions = services.add_subparsers(dest="services_command", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("up", help="start them (they keep running) and write workspace/services.env")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds each backend may take to answer (180)")
    actions.add_parser("down", help="stop every backend 'up' started")
    status = actions.add_parser("status", help="which backends answer (exit 1 if any does not)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    services.set_defaults(handler="lifecycle.services.command:services_command")


# One function per subcommand, in the order `lifecycle --help` lists them.
SUBCOMMANDS = [_add_run, _add_data, _add_progress, _add_serve, _add_bench, _add_monitor, _add_services, _add_site,
               _add_grade]


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
