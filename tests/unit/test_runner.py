"""The course runner on small fixture notebooks, executed for real with papermill."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lifecycle.config import load_settings
from lifecycle.course.runner import format_summary, list_notebooks, parse_overrides, run_course
from lifecycle.errors import ConfigError, NotebookError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "course"


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    return load_settings(root=root, build=tmp_path / "build")


def test_list_notebooks_in_order_and_by_number(course):
    assert [nb.stem for nb in list_notebooks(course)] == ["00_first", "01_fails", "02_after"]
    assert [nb.stem for nb in list_notebooks(course, ["02", "00_first"])] == ["00_first", "02_after"]


def test_unknown_notebook_names_the_choices(course):
    with pytest.raises(ConfigError, match=r"--only '09' matches no notebook.*00_first, 01_fails, 02_after"):
        list_notebooks(course, ["09"])


def test_parse_overrides_types_values_and_rejects_bad_pairs():
    assert parse_overrides(["seed=7", "reveal_answers=true", "name=x"]) == {
        "seed": 7, "reveal_answers": True, "name": "x"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["seed"])


@pytest.mark.slow
def test_run_records_results_with_profile_and_overrides(course, tmp_path):
    summary = run_course("smoke", ["00"], {"only_here": "cli"}, settings=course, progress=False)
    run = summary["notebooks"]["00_first"]
    assert run["status"] == "ok"
    # profile value, per-notebook profile value, then the -p override
    assert run["results"] == {"seed": 5, "rows": 200, "only_here": "cli"}
    written = json.loads((tmp_path / "build" / "summary.json").read_text())
    assert written["notebooks"]["00_first"]["results"]["rows"] == 200
    assert (tmp_path / "build" / "notebooks" / "00_first.ipynb").is_file()
    assert "00_first" in format_summary(summary)


@pytest.mark.slow
def test_failing_notebook_stops_the_run_naming_notebook_and_cell(course, tmp_path):
    with pytest.raises(NotebookError) as caught:
        run_course("smoke", settings=course, progress=False)
    err = caught.value
    assert err.notebook == "01_fails"
    assert err.cell == 3  # the source notebook's index (papermill's injected cell not counted)
    assert "failed at cell 3: ValueError: the fixture fails here on purpose" in str(err)
    assert "raise ValueError" in str(err)
    summary = json.loads((tmp_path / "build" / "summary.json").read_text())
    assert summary["notebooks"]["00_first"]["status"] == "ok"  # earlier outputs kept
    assert summary["notebooks"]["01_fails"]["status"] == "failed"
    assert summary["notebooks"]["01_fails"]["results"] == {"reached": "before the error"}
    assert "02_after" not in summary["notebooks"]
    assert (tmp_path / "build" / "notebooks" / "01_fails.ipynb").is_file()


def test_unknown_parameter_is_refused_before_anything_runs(course, tmp_path):
    with pytest.raises(ConfigError, match=r"\['colour'\] are declared by none"):
        run_course("smoke", overrides={"colour": "red"}, settings=course, progress=False)
    assert not (tmp_path / "build" / "summary.json").exists()


def test_unknown_profile_names_the_profiles(course):
    with pytest.raises(ConfigError, match=r"unknown profile 'huge'.*\['full', 'smoke'\]"):
        run_course("huge", ["00"], settings=course, progress=False)


@pytest.mark.slow
def test_run_prints_one_line_per_notebook_and_no_kernel_or_papermill_noise(course, capfd):
    run_course("smoke", ["00", "02"], settings=course)
    out, err = capfd.readouterr()  # the file descriptors: the kernels write their own log to the runner's stderr
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert re.fullmatch(r"\[1/2\] 00_first\s+ok\s+\d+\.\d s", lines[0])
    assert re.fullmatch(r"\[2/2\] 02_after\s+ok\s+\d+\.\d s", lines[1])
    assert "without encryption" not in err  # ipykernel's start-up warning, silenced by its log level
    assert "Executing" not in out + err  # papermill's progress bar
