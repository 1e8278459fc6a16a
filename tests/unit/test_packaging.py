"""The package's public face: dependencies in sync, a pinned public API, a fast CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

import lifecycle

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_installs_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"] + extras["test"] + extras["orchestration"]}
    conda = [d for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"] if isinstance(d, str)]
    have = {_name(d): d.replace(" ", "") for d in conda if _name(d) not in ("python", "pip")}
    assert have == wanted


def test_known_breakages_are_pinned():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "pandas>=2.2,<3" in deps  # evidently does not import on pandas 3
    assert "mlflow>=3,<4" in deps and "evidently>=0.7,<0.8" in deps


def test_public_api_is_pinned():
    assert lifecycle.__all__ == [
        "CommandError", "ConfigError", "LifecycleError", "NotebookError", "SchemaError", "Settings",
        "generate_transactions", "load_settings", "read_transactions", "record", "run_course",
        "write_transactions",
    ]
    for name in lifecycle.__all__:
        assert getattr(lifecycle, name) is not None


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

    checked = {"prefect": _prefect.CHECKED_WITH, "dvc": _dvc.CHECKED_WITH}
    assert checked == {"prefect": "3.9.1", "dvc": "3.67.1"}
    for package, known in checked.items():
        assert _minor(version(package)) == _minor(known), (
            f"{package} {version(package)} is installed; lifecycle.pipeline._{package} was checked against {known}")
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
    # quiz ↔ progress is gone (the banks moved to course/quiz_bank); tracking's runs ↔ registry is known:
    # runs imports registry inside log_fraud_model (to register a run), registry imports runs at the top.
    assert _cycles(_import_graph()) == [["lifecycle.tracking.registry", "lifecycle.tracking.runs"]]
