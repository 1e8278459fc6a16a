"""The course's own review rules, as checks over notebooks: what a reviewer holds every lesson to.

* :func:`typed_measurements`: a number with a unit typed into a lesson's Markdown (a measurement must
  reach the learner from a cell, where the next run cannot contradict it), unless it is a fact that no
  run measures (the rollout plan, a library version, the tutorial's quoted claims: :data:`ALLOWED`).
* :func:`output_noise`: what an executed lesson shows that is not meant for the learner: library
  warnings, banners, progress bars, ANSI escapes, absolute paths, ports and process ids.
* :func:`missing_plots`: a cell that draws a plot but shows no image in the executed notebook.

Each returns :class:`Finding` s naming the notebook, the cell and what was found;
``python -m lifecycle.course.lint NOTEBOOK...`` prints them (exit 1 when there are any). The tests in
``tests/notebooks/`` run them over the committed lessons and over the notebooks ``lifecycle run`` executed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A number followed by a unit of something a run measures.
_UNITS = r"(?:ms|µs|us|s|sec|seconds?|minutes?|min|%|×|x|req/s|requests/s|rows/s|MB|GB|KB|kB)"
_MEASUREMENT = re.compile(rf"(?<![\w.\-/])(?:~|≈|about\s)?\d[\d,]*(?:\.\d+)?\s?{_UNITS}(?![\w/])")
# Facts, not measurements: the rollout plan, percentiles' names, library versions, quoted claims.
ALLOWED = (
    re.compile(r"\b5\s?%\s?→\s?25\s?%\s?→\s?50\s?%\s?→\s?100\s?%"),  # the rollout plan
    re.compile(r"(?<![\d.,])(?:5|25|50|100)\s?%"),  # the plan's steps, named one at a time (not 98.5%)
    re.compile(r"\bp(?:50|95|99)\b"),
    re.compile(r"\b2[–-]10\s?×"),  # the tutorial's "gRPC is 2–10× faster" claim, quoted to be examined
    re.compile(rf"\bv?\d+\.\d+(?:\.\d+)?\b(?!\s?{_UNITS}(?![\w/]))"),  # versions (a number with no unit)
    re.compile(r"\b95\s?%\s+(?:interval|confidence|CI)"),  # an interval's level, a choice not a measurement
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LEVELS = r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)"
_NOISE = (
    ("a library warning", re.compile(r"\b\w*(?:Warning|WARNING)\b[:\s]")),
    ("a library log line", re.compile(  # MLflow's format; Prefect's and uvicorn's; Python's default; Jupyter's
        rf"^(?:\d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d {_LEVELS}|\d\d:\d\d:\d\d\.\d{{3}} \| {_LEVELS}\s*\||{_LEVELS}:[\w.]+:|"
        rf"\[\w+\] {_LEVELS} \|)", re.M)),
    ("MLflow's run link", re.compile(r"🏃 View run|🧪 View experiment")),
    ("a banner", re.compile(r"Star us on GitHub|What's next\?|Creating initial MLflow database tables")),
    ("MLflow's registry chatter", re.compile(r"Successfully registered model|Created version '\d+' of model|"
                                             r"Registered model '[^']+' already exists")),
    ("a progress bar", re.compile(r"\d+%\|[█▏▎▍▌▋▊▉ #]*\||Downloading artifacts")),
    ("an absolute path", re.compile(  # also inside a URI (sqlite:////work/…, file:///home/…) and on Windows
        r"(?:(?<![\w.:/])|(?<=:///)|(?<=[a-z]://))/(?:work|tmp|home|root|usr|var|opt|mnt|srv|private|Users|Volumes)/"
        r"[\w.\-/]+|\b[A-Za-z]:\\(?:Users|Windows|Program Files)\\[^\s'\"]*")),
    ("a port", re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):(\d{2,5})\b")),
    ("a process id", re.compile(r"\bpid[ =:]+\d+|\bprocess \d{3,}\b", re.I)),
    ("an id that changes every run", re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")),
)
# Ports a learner types, the same on every run (the tools' defaults, in commands to paste): not noise.
# A port a server got from the OS (free_port) changes every run, and is.
FIXED_PORTS = {"4200", "5000", "8000", "8002", "8888", "50051"}
# A cell that shows a library's warning on purpose (caught and printed, to teach what it says) carries this
# tag; it exempts that cell from the warning rule only, and a tagged cell that shows no warning is a finding.
MEANT_WARNING_TAG = "shows-library-warning"
_PLOTTING = re.compile(r"\bplt\.(?:subplots|figure|plot|bar|barh|hist|scatter)\b|\.plot(?:\.\w+)?\(|"
                       r"\bdraw_\w+\(|\bplot_\w+\(")


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer would flag: where, what rule, and the text that broke it."""

    notebook: str
    cell: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.notebook}, cell {self.cell}: {self.rule}: {self.text!r}"


def _cells(notebook: str | Path | dict) -> tuple[str, list[dict[str, Any]]]:
    import nbformat

    if isinstance(notebook, dict):
        return notebook.get("metadata", {}).get("name", "notebook"), notebook["cells"]
    return Path(notebook).name, nbformat.read(notebook, as_version=4).cells


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def typed_measurements(notebook: str | Path | dict) -> list[Finding]:
    """Numbers with a unit typed into Markdown cells (code spans and quoted tutorial code excepted).

    Args:
        notebook: a notebook file, or a notebook as a dict (``{"cells": [...]}``).

    Returns:
        One finding per typed measurement.
    """
    name, cells = _cells(notebook)
    findings = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        prose = re.sub(r"```.*?```", " ", _source(cell), flags=re.S)  # quoted code is not a claim
        prose = re.sub(r"`[^`]*`", " ", prose)
        for allowed in ALLOWED:
            prose = allowed.sub(" ", prose)
        findings += [Finding(name, index, "a measured number typed into Markdown", match.group(0).strip())
                     for match in _MEASUREMENT.finditer(prose)]
    return findings


def _output_texts(cell: dict[str, Any]) -> list[str]:
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(_source({"source": output.get("text", "")}))
        elif output.get("output_type") in ("execute_result", "display_data"):
            data = output.get("data", {})
            for kind in ("text/plain", "text/html", "text/markdown"):
                if kind in data:
                    texts.append(_source({"source": data[kind]}))
                    break
        elif output.get("output_type") == "error":
            texts.append("\n".join(output.get("traceback", [])))
    return texts


def output_noise(notebook: str | Path | dict) -> list[Finding]:
    """What an executed notebook's outputs show that is not meant for the learner.

    Ports in :data:`FIXED_PORTS` are not flagged; nor is a warning in a cell tagged :data:`MEANT_WARNING_TAG`.

    Returns:
        One finding per pattern per cell (the first match is quoted).
    """
    name, cells = _cells(notebook)
    findings = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        text = "\n".join(_output_texts(cell))
        meant_warning = MEANT_WARNING_TAG in cell.get("metadata", {}).get("tags", [])
        if _ANSI.search(text):
            findings.append(Finding(name, index, "an ANSI escape", _ANSI.search(text).group(0)))
        for rule, pattern in _NOISE:
            matches = [m for m in pattern.finditer(text) if rule != "a port" or m.group(1) not in FIXED_PORTS]
            if rule == "a library warning" and meant_warning:
                if not matches:
                    findings.append(Finding(name, index, f"a '{MEANT_WARNING_TAG}' tag on a cell that shows none", ""))
            elif matches:
                findings.append(Finding(name, index, rule, matches[0].group(0)[:80]))
    return findings


def missing_plots(notebook: str | Path | dict) -> list[Finding]:
    """Cells that draw a plot yet have no image output in the executed notebook."""
    name, cells = _cells(notebook)
    findings = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or not _PLOTTING.search(_source(cell)):
            continue
        images = [output for output in cell.get("outputs", []) if "image/png" in output.get("data", {})
                  or "image/svg+xml" in output.get("data", {})]
        if not images:
            findings.append(Finding(name, index, "a plotting cell without an image", _source(cell)[:60]))
    return findings


def main(argv: list[str] | None = None) -> int:
    """``python -m lifecycle.course.lint [--source] NOTEBOOK...``: print every finding; exit 1 if any.

    ``--source`` checks committed lessons (typed measurements only); otherwise executed ones (all rules).
    """
    argv = sys.argv[1:] if argv is None else argv
    source_only = "--source" in argv
    findings = []
    for path in [arg for arg in argv if arg != "--source"]:
        findings += typed_measurements(path)
        if not source_only:
            findings += output_noise(path) + missing_plots(path)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
