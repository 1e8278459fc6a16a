"""What the learner reads: the course's review rules (lifecycle.course.lint) over every lesson.

* committed lessons: no measured number typed into Markdown (a fast check of the source);
* the executed lessons of the one smoke course run (the `smoke_course` fixture): no library warnings,
  log lines, banners, progress bars, ANSI escapes, absolute paths, ports or ids that change every run, and
  every cell that draws a plot shows an image.

Each failure names the notebook, the cell (its index in the executed notebook, papermill's injected
parameters cell included) and what was found.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.course.lint import missing_plots, output_noise, typed_measurements

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _report(findings) -> str:
    return "\n".join(str(finding) for finding in findings)


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_no_measurement_is_typed_into_a_lessons_markdown(path):
    findings = typed_measurements(path)
    assert not findings, f"{path.name}: render these from a cell instead:\n{_report(findings)}"


@pytest.mark.slow
@pytest.mark.timeout(1_200)
@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_an_executed_lesson_shows_only_what_is_meant_for_the_learner(smoke_course, path):
    executed = smoke_course.build / "notebooks" / path.name
    assert executed.is_file(), f"lifecycle run wrote no {executed.name}"
    findings = output_noise(executed)
    assert not findings, (f"build/notebooks/{path.name} shows the learner what is not meant for them; silence it "
                          f"at its source (logging level, library setting, quiet flag):\n{_report(findings)}")


@pytest.mark.slow
@pytest.mark.timeout(1_200)
@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_every_plotting_cell_of_an_executed_lesson_shows_its_plot(smoke_course, path):
    executed = smoke_course.build / "notebooks" / path.name
    assert executed.is_file(), f"lifecycle run wrote no {executed.name}"
    findings = missing_plots(executed)
    assert not findings, f"build/notebooks/{path.name} draws without showing the image:\n{_report(findings)}"
