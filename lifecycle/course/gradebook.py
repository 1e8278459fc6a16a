"""A class's gradebook: one row per learner × exercise × case, written as a CSV, an HTML overview and one
HTML summary per exercise (pass rates, the most common failing cases, the submissions that did not run).

Made by :func:`lifecycle.course.grade.grade_class`; taught nowhere (README, "For instructors").
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("passed", "failed", "error", "missing")
CSV_COLUMNS = ("learner", "exercise", "check", "case", "case_name", "status", "detail")


@dataclass(frozen=True)
class CaseGrade:
    """One learner's grade on one hidden case: ``status`` is one of :data:`STATUSES`; ``detail`` says what
    was expected and what came back (failed), or why the case could not be graded (error, missing)."""

    learner: str
    exercise: str
    check: str
    case: int
    case_name: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class NotebookGrade:
    """One learner's grade on one exercise notebook: its cases, and what happened to the notebook as a
    whole (``problem``: empty, or why it did not run to the end)."""

    learner: str
    exercise: str
    cases: tuple[CaseGrade, ...]
    problem: str = ""
    seconds: float = 0.0
    executed: str = ""

    @property
    def passed(self) -> int:
        return sum(case.status == "passed" for case in self.cases)

    @property
    def why(self) -> str:
        """What went wrong with the notebook as a whole, else the first reason a case could not be graded."""
        if self.problem:
            return self.problem
        return next((c.detail for c in self.cases if c.status in ("error", "missing")), "")

    @property
    def verdict(self) -> str:
        """``8/8``, ``3/8``, or ``missing``/``error`` when no case could be graded."""
        statuses = {case.status for case in self.cases}
        if statuses == {"missing"}:
            return "missing"
        if statuses == {"error"}:
            return "error"
        return f"{self.passed}/{len(self.cases)}"


@dataclass
class Gradebook:
    """Every notebook graded in one run, in learner then exercise order."""

    notebooks: list[NotebookGrade] = field(default_factory=list)

    @property
    def rows(self) -> list[CaseGrade]:
        return [case for notebook in self.notebooks for case in notebook.cases]

    @property
    def learners(self) -> list[str]:
        return list(dict.fromkeys(notebook.learner for notebook in self.notebooks))

    @property
    def exercises(self) -> list[str]:
        return sorted({notebook.exercise for notebook in self.notebooks})

    @property
    def all_passed(self) -> bool:
        return bool(self.rows) and all(case.status == "passed" for case in self.rows)

    def grade(self, learner: str, exercise: str) -> NotebookGrade | None:
        return next((n for n in self.notebooks if n.learner == learner and n.exercise == exercise), None)

    def write(self, csv_path: Path) -> list[Path]:
        """Write the CSV to ``csv_path``, the overview beside it (same name, ``.html``) and one summary per
        exercise (``<name>-<exercise>.html``). Returns the files written, the CSV first."""
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows([getattr(row, column) for column in CSV_COLUMNS] for row in self.rows)
        written = [csv_path]
        pages = {exercise: csv_path.with_name(f"{csv_path.stem}-{exercise}.html") for exercise in self.exercises}
        overview = csv_path.with_suffix(".html")
        overview.write_text(self._overview_html(csv_path.name, pages), encoding="utf-8")
        written.append(overview)
        for exercise, page in pages.items():
            page.write_text(self._exercise_html(exercise, overview.name), encoding="utf-8")
            written.append(page)
        return written

    def table(self) -> str:
        """The grades as a plain-text table: one line per learner, one column per exercise."""
        numbers = [exercise.split("_")[0] for exercise in self.exercises]
        width = max([len("learner"), *map(len, self.learners)])
        lines = [f"{'learner':<{width}}  " + "  ".join(f"{number:>7}" for number in numbers)]
        for learner in self.learners:
            cells = [(self.grade(learner, exercise) or NotebookGrade(learner, exercise, ())).verdict
                     for exercise in self.exercises]
            lines.append(f"{learner:<{width}}  " + "  ".join(f"{cell:>7}" for cell in cells))
        return "\n".join(lines)

    def _overview_html(self, csv_name: str, pages: dict[str, Path]) -> str:
        head = "".join(f'<th><a href="{html.escape(pages[e].name)}">{html.escape(e)}</a></th>' for e in self.exercises)
        rows = []
        for learner in self.learners:
            cells = []
            for exercise in self.exercises:
                grade = self.grade(learner, exercise)
                verdict = grade.verdict if grade else "missing"
                full = grade is not None and grade.cases and grade.passed == len(grade.cases)
                kind = "pass" if full else "broken" if verdict in ("error", "missing") else "part"
                title = html.escape(grade.why if grade else "")
                cells.append(f'<td class="{kind}" title="{title}">{html.escape(verdict)}</td>')
            rows.append(f"<tr><th>{html.escape(learner)}</th>{''.join(cells)}</tr>")
        body = (f"<p>{len(self.learners)} learner(s), {len(self.exercises)} exercise(s): cases passed of the "
                f"cases graded. Every case, with its message, is in <code>{html.escape(csv_name)}</code>; each "
                "exercise's page has its pass rates and most common failing cases.</p>"
                f"<table><tr><th>learner</th>{head}</tr>{''.join(rows)}</table>")
        broken = "".join(f"<tr><td>{html.escape(n.learner)}</td><td>{html.escape(n.exercise)}</td>"
                         f"<td>{html.escape(n.why)}</td></tr>" for n in self.notebooks if n.why)
        if broken:
            body += ("<h2>Hand-ins that could not be graded in full</h2><table><tr><th>learner</th><th>exercise</th>"
                     f"<th>why</th></tr>{broken}</table>")
        return _page("Gradebook", body)

    def _exercise_html(self, exercise: str, overview: str) -> str:
        grades = [n for n in self.notebooks if n.exercise == exercise]
        cases = [case for grade in grades for case in grade.cases]
        full = sum(bool(g.cases) and g.passed == len(g.cases) for g in grades)
        keys = list(dict.fromkeys((case.check, case.case, case.case_name) for case in cases))
        rate_rows, failing = [], []
        for check, number, name in keys:
            these = [c for c in cases if (c.check, c.case, c.case_name) == (check, number, name)]
            passed = sum(c.status == "passed" for c in these)
            wrong = [c for c in these if c.status == "failed"]
            common = Counter(c.detail for c in wrong).most_common(1)
            rate_rows.append(f"<tr><td>{html.escape(check)}</td><td>{number}</td><td>{html.escape(name)}</td>"
                             f"<td>{passed}</td><td>{len(wrong)}</td><td>{len(these) - passed - len(wrong)}</td>"
                             f"<td>{100 * passed / len(these):.0f}%</td></tr>")
            if wrong:
                failing.append((len(wrong), check, number, name, common[0][0] if common else ""))
        failing.sort(key=lambda item: (-item[0], item[1], item[2]))
        failing_rows = "".join(f"<tr><td>{count}</td><td>{html.escape(check)} case {number}: {html.escape(name)}"
                               f"</td><td>{html.escape(detail)}</td></tr>"
                               for count, check, number, name, detail in failing[:10])
        broken = [(g.learner, g.why) for g in grades if g.why]
        broken_rows = "".join(f"<tr><td>{html.escape(learner)}</td><td>{html.escape(reason)}</td></tr>"
                              for learner, reason in broken)
        body = (f'<p><a href="{html.escape(overview)}">All exercises</a></p>'
                f"<p>{full} of {len(grades)} learner(s) pass every case. A case that could not be graded (the "
                "submission did not run that far, or was not handed in) counts as not passed.</p>"
                "<h2>Pass rate per case</h2><table><tr><th>check</th><th>case</th><th>what it tests</th>"
                "<th>passed</th><th>failed</th><th>not graded</th><th>pass rate</th></tr>"
                f"{''.join(rate_rows)}</table>"
                "<h2>Most common failing cases</h2>"
                + (f"<table><tr><th>learners</th><th>case</th><th>most common message</th></tr>{failing_rows}</table>"
                   if failing_rows else "<p>No case failed on an answer.</p>")
                + "<h2>Submissions that could not be graded in full</h2>"
                + (f"<table><tr><th>learner</th><th>why</th></tr>{broken_rows}</table>" if broken_rows
                   else "<p>None: every submission ran to the end.</p>"))
        return _page(f"Exercise {exercise}", body)


def _page(title: str, body: str) -> str:
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
             ".pass{background:#e3f4e6}.part{background:#fff4d6}.broken{background:#fbe3e3}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
