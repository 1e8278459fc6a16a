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
    extra = [r for name, requirements in extras.items() if name != "dev" for r in requirements]
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"] + extra}
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
