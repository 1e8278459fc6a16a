"""Quiz progress per learner: every answer's first try and latest, and a score per lesson.

Answers are kept in ``<workspace>/progress/<learner>.json``, rewritten atomically (a temporary
file, then a rename) so a kernel killed mid-write never leaves half a file::

    {"learner": "ana", "lessons": {"06_canary_release": {"canary-purpose": {
        "attempts": 2,
        "first": {"chosen": [0], "correct": false, "at": "2026-11-26T09:12:03+00:00"},
        "latest": {"chosen": [1], "correct": true, "at": "2026-11-26T09:12:41+00:00"}}}}}

``chosen`` holds option indices in the bank's order. ``lifecycle progress`` prints the score.

Taught in notebooks/00_start_here.ipynb (how quizzes work).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.course.quiz_bank import Question, list_lessons, load_bank
from lifecycle.errors import ConfigError, SchemaError

LEARNER_ENV = "LIFECYCLE_LEARNER"
LEARNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def default_learner() -> str:
    """The learner's name: ``$LIFECYCLE_LEARNER``, else ``$JUPYTERHUB_USER``, else the OS user name.

    Raises:
        ConfigError: ``$LIFECYCLE_LEARNER`` is not a usable name.
    """
    if os.environ.get(LEARNER_ENV):
        return check_learner(os.environ[LEARNER_ENV], f"${LEARNER_ENV}")
    try:
        found = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        found = ""
    # A name the system made up (DOMAIN\user, spaces) is tidied rather than refused: the learner did not choose it.
    found = re.sub(r"[^A-Za-z0-9._@-]", "_", found).lstrip("._@-")[:64]
    return found or "learner"


def check_learner(name: str, source: str = "learner") -> str:
    """Return ``name`` if it can name a progress file, else raise ConfigError saying what is allowed."""
    if not isinstance(name, str) or not LEARNER_NAME.match(name):
        raise ConfigError(f"{source} {name!r} cannot name a progress file; use 1-64 letters, digits, '.', "
                          f"'_', '@' or '-', starting with a letter or digit (e.g. 'ana.silva')")
    return name


class ProgressStore:
    """One learner's quiz answers.

    Args:
        learner: the learner's name (default: :func:`default_learner`).
        settings: where the workspace is (default: :func:`~lifecycle.config.load_settings`).

    Raises:
        ConfigError: a learner name that cannot name a file.
    """

    def __init__(self, learner: str | None = None, settings: Settings | None = None) -> None:
        self.learner = check_learner(learner) if learner is not None else default_learner()
        self.settings = settings or load_settings()
        self.path = self.settings.workspace / "progress" / f"{self.learner}.json"

    def load(self) -> dict[str, Any]:
        """Everything recorded so far (an empty record if the learner has answered nothing).

        Raises:
            SchemaError: the file exists but is not a progress record.
        """
        if not self.path.is_file():
            return {"learner": self.learner, "lessons": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise SchemaError(f"{self.path} is not valid JSON ({err}); it was not overwritten: restore it "
                              "or move it away to start this learner's record afresh") from err
        if not isinstance(data, dict) or not isinstance(data.get("lessons"), dict):
            raise SchemaError(f"{self.path} is not a progress record (no 'lessons' mapping); "
                              "move it away to start this learner's record afresh")
        return data

    def record_answer(self, question: Question, chosen: list[int], correct: bool) -> dict[str, Any]:
        """Save an answer: the first try is kept, the latest replaced, attempts counted.

        Args:
            question: the question answered (its ``lesson`` and ``id`` key the record).
            chosen: the option indices chosen.
            correct: whether that was right.

        Returns:
            The question's record after this answer.

        Raises:
            SchemaError: the existing file is not a progress record (it is left as it was).
        """
        data = self.load()
        answer = {"chosen": sorted(int(i) for i in chosen), "correct": bool(correct),
                  "at": datetime.now(UTC).isoformat(timespec="seconds")}
        entry = data["lessons"].setdefault(question.lesson, {}).setdefault(question.id, {})
        entry.setdefault("first", answer)
        entry["latest"] = answer
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        self._write(data)
        return entry

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.learner}.", suffix=".tmp", dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2, sort_keys=True)
            file.write("\n")
        Path(temporary).replace(self.path)


def progress_report(learner: str | None = None, settings: Settings | None = None) -> list[dict[str, Any]]:
    """A learner's score per lesson, for every lesson that has a question bank.

    Answers to questions no longer in a bank are not counted.

    Args:
        learner: whose score (default: :func:`default_learner`).
        settings: where the banks and the workspace are.

    Returns:
        One row per lesson, in course order: ``lesson``, ``questions`` (in the bank),
        ``answered``, ``first_try_correct`` and ``latest_correct``.

    Raises:
        ConfigError: a bad learner name.
        SchemaError: a malformed bank or progress file.
    """
    settings = settings or load_settings()
    answers = ProgressStore(learner, settings).load()["lessons"]
    rows = []
    for lesson in list_lessons(settings):
        ids = [q.id for q in load_bank(lesson, settings)]
        given = [answers.get(lesson, {})[qid] for qid in ids if qid in answers.get(lesson, {})]
        rows.append({"lesson": lesson, "questions": len(ids), "answered": len(given),
                     "first_try_correct": sum(bool(a["first"]["correct"]) for a in given),
                     "latest_correct": sum(bool(a["latest"]["correct"]) for a in given)})
    return rows


def format_progress(rows: list[dict[str, Any]], learner: str) -> str:
    """A plain-text table of :func:`progress_report`'s rows, with a total line."""
    counts = ("questions", "answered", "first_try_correct", "latest_correct")
    total = {"lesson": "total", **{key: sum(row[key] for row in rows) for key in counts}}
    lines = [f"quiz progress of {learner}", f"{'lesson':<26} {'answered':>9} {'first try':>10} {'latest':>9}"]
    for row in [*rows, total]:
        n = row["questions"]
        lines.append(f"{row['lesson']:<26} {row['answered']:>5}/{n:<3} {row['first_try_correct']:>6}/{n:<3} "
                     f"{row['latest_correct']:>5}/{n}")
    return "\n".join(lines)


def progress_command(args: Any) -> int:
    """The ``lifecycle progress`` command: print a learner's score per lesson (``--json`` for JSON)."""
    store = ProgressStore(args.learner)
    rows = progress_report(store.learner, store.settings)
    if getattr(args, "json", False):
        print(json.dumps({"learner": store.learner, "lessons": rows}, indent=2))
        return 0
    print(format_progress(rows, store.learner))
    if not store.path.is_file():
        print(f"(no answers recorded yet: {store.path} does not exist; answer a quiz in a lesson notebook, "
              f"or pass --learner NAME)", file=sys.stderr)
    return 0
