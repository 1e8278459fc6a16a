"""The house in two layers: the fraud system's stages never import the course built on them."""

from __future__ import annotations

import ast
from pathlib import Path

import lifecycle

PACKAGE = Path(lifecycle.__file__).resolve().parent
# The faces of the kit may name the course: the `lifecycle` command and the package's lazy top-level API.
FACES = {"cli.py", "__init__.py"}


def course_imports(package: Path) -> list[tuple[str, str]]:
    """(module file, imported name) for every import of ``lifecycle.course`` outside ``course/`` and the faces."""
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] == "course" or str(relative) in FACES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.module != "lifecycle"
                     else [f"lifecycle.{alias.name}" for alias in node.names] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            found += [(str(relative), name) for name in names if name.startswith("lifecycle.course")]
    return found


def test_no_stage_imports_the_course():
    assert course_imports(PACKAGE) == [], "a stage imports the course layer; move the shared code into the stage"


def test_the_rule_catches_a_stage_that_imports_the_course(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "quiz.py").write_text("from lifecycle.data import CATEGORIES\n")  # allowed direction
    (tmp_path / "serving.py").write_text("def f():\n    from lifecycle.course.quiz import show_quiz\n")
    (tmp_path / "training.py").write_text("from lifecycle import course, errors\n")
    (tmp_path / "cli.py").write_text("import lifecycle.course.runner\n")  # a face may
    assert course_imports(tmp_path) == [("serving.py", "lifecycle.course.quiz"), ("training.py", "lifecycle.course")]


def test_every_stage_has_one_home():
    stages = {"data", "versioning", "features", "training", "tracking", "pipeline", "serving", "canary", "monitoring"}
    homes = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
             if not path.name.startswith(("_", ".")) and (path.suffix == ".py" or (path / "__init__.py").is_file())}
    assert stages <= homes, f"missing stage modules: {sorted(stages - homes)}"
    # services: the backends a team runs (S3 store, tracking and orchestration servers), a system package.
    allowed = {"config", "errors", "cli", "course", "proto", "services"}
    assert homes - stages <= allowed, f"unexpected top-level: {homes - stages}"
