"""The package's public face: dependencies in sync, a pinned public API, a fast CLI."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_installs_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    extra = [r for name, requirements in extras.items() if name != "dev" for r in requirements]
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"] + extra}
    conda = [d for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"] if isinstance(d, str)]
    have = {_name(d): d.replace(" ", "") for d in conda if _name(d) not in ("python", "pip")}
    assert have == wanted


def test_known_breakages_are_pinned():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "pandas>=2.2,<3" in deps  # evidently does not import on pandas 3
    assert "mlflow>=3,<4" in deps and "evidently>=0.7,<0.8" in deps


# Each package's public API, as the lessons (and users) take it: what `from lifecycle.<package> import *` gives.
PUBLIC_API = {
    "lifecycle": [
        "CommandError", "ConfigError", "LifecycleError", "NotebookError", "SchemaError", "Settings",
        "generate_transactions", "load_settings", "read_transactions", "record", "run_course", "write_transactions"],
    "lifecycle.serving": [
        "FraudScorer", "MicroBatcher", "Prediction", "PredictionLog", "PredictionLogWriter", "PredictionRecord",
        "ServerHandle", "Transaction", "TransactionBatch", "compile_predictor", "create_app", "create_constant_app",
        "create_grpc_server", "model_feature_order", "request_bodies", "run_grpc_load", "run_http_load",
        "start_server", "wait_until_ready"],
    "lifecycle.tracking": [
        "CHALLENGER", "CHAMPION", "EXPERIMENT", "HISTORY_ARTIFACT", "MlflowServer", "PROMOTION_ALPHA",
        "PromotionCheck", "ServedModel", "alias_version", "apply_promotion", "compare_runs",
        "compare_with_champion", "describe_gain", "ensure_champion", "export_served_model", "load_exported_model",
        "load_served_model", "log_fraud_model",
        "mlflow_client", "mlflow_ui_command", "promote", "register_run", "set_alias", "should_promote",
        "start_mlflow_server", "use_experiment"],
    "lifecycle.pipeline": [
        "CODE_PARAMS_FILE", "DEFAULT_PARAMS", "METRICS", "MODEL", "PARAMS_FILE", "PIPELINE_FILES",
        "PREFECT_FOLDER", "PREFECT_INSTALL_HINT", "PrefectRun", "PrefectServer", "ReproRun", "SOURCE",
        "STAGES", "STAGE_NAMES", "Stage", "TRANSIENT_ERRORS", "build_feature_table", "code_params",
        "commit_pipeline", "configure_prefect", "drain_prefect_workers", "evaluate_model", "get_stage",
        "ingest_data", "ingested_lineage", "load_model_bundle", "parse_repro_output", "pipeline_definition",
        "prefect_flow", "prefect_installed", "read_params", "register_model", "reproduce", "require_prefect",
        "reset_pipeline", "run_prefect_flow", "run_stage", "run_stage_task", "set_param", "stage_code_params",
        "stage_environment", "stage_fingerprint", "start_prefect_api", "start_prefect_server", "train_model",
        "validate_data", "write_code_params", "write_params", "write_pipeline"],
    "lifecycle.canary": [
        "CanaryRollout", "CanaryRouter", "ErrorRateGate", "FlagRateGate", "GateResult", "KINDS",
        "LatencyGate", "Look", "PrecisionGate", "RolloutPlan", "RouterServer", "ScoreDistributionGate",
        "StepEvidence", "StepResult", "Traffic", "VERDICTS", "combine_verdicts", "default_gates",
        "peeking_false_alarms", "plot_policy", "plot_timeline", "routes_to_canary", "send_requests",
        "serve_router", "simulate_kinds", "simulate_policy", "summarise_answers", "summarise_policy",
        "user_bucket"],
    "lifecycle.monitoring": [
        "ACTIONS", "CATEGORICAL_FEATURES", "CBPE", "DriftMonitor", "EXIT_CODES", "KINDS",
        "MONITORED_FEATURES", "MonitorDecision", "MonitoringDashboard", "NotFittedError", "Policy",
        "Reference", "ScoredPeriod", "WeekDecision", "check_days", "choose_threshold_near_best",
        "column_drift", "days_to_detect", "decide", "drift_statistics", "drift_table", "expected_confusion",
        "first_week", "monitor_command", "monitor_period", "quality_over_time", "reference_window",
        "resampled_false_alarms", "retrain_on_labels", "retrain_on_window", "retraining_rows",
        "run_drift_report", "run_schedule", "score_period", "score_periods", "score_window", "start_ui",
        "ui_command", "week_of", "weekly_drift", "weekly_expected_confusion", "weekly_performance"],
    "lifecycle.course": [
        "ProgressStore", "QUICK_CONFIGS", "Question", "STAGES", "ablate_feature_groups", "benchmark_servers",
        "benchmark_transactions", "build_quiz", "canary_playground", "check_environment",
        "compare_features_and_models", "crash_test", "draw_lifecycle_map", "drift_playground",
        "feature_playground", "fit_and_score", "leakage_over_seeds", "leakage_verdict", "list_lessons",
        "load_bank", "mean_interval", "measure_leakage", "one_thread_per_pool", "progress_report", "raw_columns",
        "record", "run_course", "show_quiz", "start_benchmark_servers", "start_tutorial_server", "time_stages",
        "tracking_playground"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_public_api_is_pinned(package):
    assert import_module(package).__all__ == PUBLIC_API[package]


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_each_public_name_comes_from_the_module_its_package_names(package):
    module = import_module(package)
    for name in module.__all__:
        value = getattr(module, name)  # AttributeError: the export map names a module without it
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == module._EXPORTS[name], f"{package}.{name} is defined in {value.__module__}"


def test_cli_help_imports_nothing_heavy():
    # `lifecycle --help` must answer at once: no pandas/numpy/mlflow/papermill behind the parser.
    code = ("import sys, contextlib, io, lifecycle.cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    lifecycle.cli.main(['--help'])\n"
            "heavy = sorted(m for m in ('numpy', 'pandas', 'mlflow', 'papermill', 'sklearn', 'evidently', 'dvc')"
            " if m in sys.modules)\n"
            "print(heavy, 'COMMAND' in out.getvalue())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] True"


def test_cli_generates_data_and_reports_bad_arguments(tmp_path):
    out = tmp_path / "t.csv"
    done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "data", "generate", "--rows", "300", "--seed", "4",
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and out.is_file() and "wrote 300 transactions" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "lifecycle.cli", "data", "generate", "--rows", "-3",
                          "--out", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "rows must be a positive integer, got -3" in bad.stderr


def _installed_source(package: str, relative: str) -> str:
    """The text of a file of an installed package, read without importing the package."""
    from importlib.util import find_spec

    return (Path(find_spec(package).submodule_search_locations[0]) / relative).read_text()


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_third_party_internals_are_those_of_the_versions_they_were_checked_against():
    """Each module that uses a library's internals names the version it read them in; a different
    installed minor version, or an internal that moved, fails here (read them again, then bump it)."""
    from importlib.metadata import version

    from lifecycle.pipeline import _dvc, _prefect
    from lifecycle.tracking import _mlflow

    checked = {"prefect": _prefect.CHECKED_WITH, "dvc": _dvc.CHECKED_WITH, "mlflow": _mlflow.CHECKED_WITH}
    assert checked == {"prefect": "3.9.1", "dvc": "3.67.1", "mlflow": "3.17.2"}
    for package, known in checked.items():
        assert _minor(version(package)) == _minor(known), (
            f"{package} {version(package)} is installed; lifecycle's _{package} module was checked against {known}")
    # MLflow: the per-requirement check log_model calls by name, with one requirement.
    utils = _installed_source("mlflow", "utils/requirements_utils.py")
    assert f"def {_mlflow.REQUIREMENT_CHECK[1]}(" in utils and f"{_mlflow.REQUIREMENT_CHECK[1]}(" in \
        utils.split(f"def {_mlflow.REQUIREMENT_CHECK[1]}(", 1)[1], "MLflow's requirement check moved"
    # Prefect: the variables its own temporary server is started with, read by create_app.
    server = _installed_source("prefect", "server/api/server.py")
    for name, value in _prefect.ephemeral_server_environment().items():
        assert f'"{name}": "{value}"' in server and f'os.getenv("{name}")' in server, name
    services = _installed_source("prefect", "_internal/concurrency/services.py")
    assert "def drain_all(" in services and "class APILogWorker" in _installed_source("prefect", "logging/handlers.py")
    assert "class EventsWorker" in _installed_source("prefect", "events/worker.py")
    # DVC: the log lines parse_repro_output reads, as DVC's logger formats them.
    stage_sources = "".join(_installed_source("dvc", f"stage/{name}.py") for name in ("run", "__init__", "cache"))
    flat = " ".join(stage_sources.split()).replace('" "', "")  # messages split over lines join up
    for outcome, message in _dvc.MESSAGES.items():
        assert message in flat, f"DVC no longer logs {message!r} ({outcome})"


def _import_graph() -> dict[str, set[str]]:
    """Module → the kit's modules it imports, at the top or inside a function (read from the source)."""
    import ast

    package = ROOT / "lifecycle"
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
               for path in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                          for alias in node.names}
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others."""
    reach = {name: set() for name in graph}
    for name in graph:
        todo = list(graph[name])
        while todo:
            module = todo.pop()
            if module not in reach[name]:
                reach[name].add(module)
                todo.extend(graph[module])
    groups = {frozenset({name} | {other for other in reach[name] if name in reach[other]})
              for name in graph if name in reach[name]}
    return sorted(sorted(group) for group in groups)


def test_no_module_imports_one_that_imports_it_back():
    # quiz ↔ progress is gone (the banks moved to course/quiz_bank). Two are known, each a call back inside
    # one function: tracking's runs imports registry inside log_fraud_model (to register a run), registry
    # imports runs at the top; the pipeline's stages import provenance inside run_stage and main (the data
    # version ingested, the code parameters), provenance reads the stage list at the top.
    assert _cycles(_import_graph()) == [["lifecycle.pipeline.provenance", "lifecycle.pipeline.stages"],
                                        ["lifecycle.tracking.registry", "lifecycle.tracking.runs"]]


def _lesson_uses(path: Path) -> set[tuple[str, str]]:
    """``(module, name)`` for every name a notebook takes from the kit: ``from lifecycle.x import name``, and
    ``alias.name`` where ``alias`` is a kit module or object it imported (``import lifecycle``, ``from
    lifecycle import tracking``, ``from lifecycle.monitoring import DriftMonitor``)."""
    import ast

    import nbformat

    cells = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    lines = [line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    aliases, uses = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({alias.asname or "lifecycle": alias.name if alias.asname else "lifecycle"
                            for alias in node.names if alias.name.split(".")[0] == "lifecycle"})
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lifecycle":
            uses |= {(node.module, alias.name) for alias in node.names}
            aliases.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            uses.add((aliases[node.value.id], node.attr))
    return uses


LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").rglob("*.ipynb"))
# Packages whose public API (their __all__) must cover every name a lesson takes from them or their modules.
CURATED = ("lifecycle.canary", "lifecycle.course", "lifecycle.monitoring", "lifecycle.pipeline", "lifecycle.serving",
           "lifecycle.tracking")
KNOWN_PRIVATE: set[tuple[str, str]] = set()  # none: a lesson shows only what the kit exports


def _exported(module: str, name: str) -> bool:
    """Whether the curated API covers a name a lesson takes: ``lifecycle``'s own names and those of the
    packages in :data:`CURATED` (a stage module such as ``lifecycle.features`` is its own API)."""
    from importlib.util import find_spec

    package = "lifecycle" if module == "lifecycle" else next(
        (p for p in CURATED if module == p or module.startswith(p + ".")), None)
    if package is None:
        return True
    exports = import_module(package).__all__
    if module == package:
        return name in exports or find_spec(f"{package}.{name}") is not None  # or a module of the package
    if module.removeprefix(package + ".").split(".")[0] in exports:
        return True  # an attribute (a method, a field) of something the package exports
    return name in exports


def test_lessons_take_only_public_names_that_their_packages_export():
    private, unexported = set(), set()
    for path in LESSONS + EXERCISES:
        for module, name in _lesson_uses(path):
            if any(part.startswith("_") for part in f"{module}.{name}".split(".")):
                private.add((path.stem, f"{module}.{name}"))
            elif path in LESSONS and not _exported(module, name):
                unexported.add((path.stem, f"{module}.{name}"))
    assert private == KNOWN_PRIVATE, "lessons use private names; make them public or show something else"
    assert not unexported, "lessons use names their package does not export: add them to its _EXPORTS"


def _help(main, argv: list[str]) -> str:
    """What a command prints for ``--help``, from its arguments on (the usage line names the program)."""
    import contextlib
    import io

    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:
        main(argv)
    return out.getvalue().split("positional arguments:", 1)[1]


def test_lifecycle_serve_and_python_m_lifecycle_serving_share_one_parser():
    from lifecycle.cli import main as lifecycle_main
    from lifecycle.serving.command import main as serving_main

    assert _help(lifecycle_main, ["serve", "--help"]) == _help(serving_main, ["--help"])
    assert "--prediction-log PATH" in _help(serving_main, ["--help"])
