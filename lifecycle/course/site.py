"""The executed course as a static site: ``lifecycle site`` turns the notebooks of a ``lifecycle run``
(``build/notebooks/``, ``build/summary.json``) into HTML pages in ``build/site/``, readable without a
kernel and without a network.

Every output on the site is the run's own: the pages are the executed notebooks, with the few
changes :mod:`lifecycle.course.site_pages` lists (quizzes become static questions with their answers
folded; other widgets a note). The home page shows the lifecycle map, the run's date, seed and
profile, and what every lesson recorded.

Built with MkDocs, the Material theme and mkdocs-jupyter, which build offline (Jupyter Book 2
fetches its site theme from the network at build time); web fonts and MathJax, which would load
from the network, are turned off. The page and link checks are in :mod:`lifecycle.course.site_check`.

Taught nowhere: instructors build it with ``make site`` (README, "For instructors").
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.course.site_pages import source, static_notebook
from lifecycle.errors import CommandError, ConfigError

SITE_NAME = "ML Lifecycle Lab"
STYLE = """\
.lifecycle-run { border-left: 4px solid #3b6ea5; background: #eef4fb; padding: 0.6em 1em; margin: 1em 0; }
.lifecycle-run-failed { border-left-color: #b03a2e; background: #fbeeee; }
.lifecycle-summary td, .lifecycle-facts td, .lifecycle-facts th { vertical-align: top; }
.lifecycle-facts th { text-align: left; }
.lifecycle-static-quiz { border: 1px solid #c9d6e6; border-radius: 4px; padding: 0.6em 1em; margin: 0.5em 0; }
.lifecycle-quiz-question { margin-bottom: 1em; }
.lifecycle-quiz-question ol { margin-top: 0.2em; }
.lifecycle-quiz-answer summary { cursor: pointer; color: #3b6ea5; font-weight: 600; }
.lifecycle-quiz-answer[open] { background: #f6f9fc; padding: 0.3em 0.8em; }
.lifecycle-widget-note { border: 1px dashed #999; padding: 0.4em 0.8em; color: #444; }
"""  # the site's own styles: run banner, summary tables, static quizzes
BUILD_TIMEOUT = 300


def build_site(build: Path | None = None, out: Path | None = None, settings: Settings | None = None) -> Path:
    """Build the static site of a course run.

    Args:
        build: the run's folder, holding ``summary.json`` and ``notebooks/`` (default: the build folder).
        out: where the site goes (default: ``<build>/site``); its old content is replaced.
        settings: where the quizzes are (default: :func:`~lifecycle.config.load_settings`).

    Returns:
        The site's home page, ``<out>/index.html``.

    Raises:
        ConfigError: there is no run in ``build``, a lesson's notebook is missing, or ``out`` holds other files.
        CommandError: MkDocs failed; the message has its last lines.
    """
    settings = settings or load_settings()
    build = Path(build or settings.build)
    out = Path(out or build / "site")
    summary = read_summary(build)
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        # MkDocs empties the folder it builds into: never one that holds something other than a site.
        raise ConfigError(f"--out {out} holds files but no site (no index.html); give an empty or new folder, "
                          "or the folder of an earlier site")
    with tempfile.TemporaryDirectory(prefix="lifecycle-site-") as staging:
        docs = Path(staging) / "docs"
        (docs / "lessons").mkdir(parents=True)
        (docs / "assets").mkdir()
        lessons = []
        for name, run in summary["notebooks"].items():
            notebook = _read_notebook(build / "notebooks" / f"{name}.ipynb")
            facts = run_facts(notebook, run)
            page = static_notebook(notebook, settings, docs, name, _banner(facts), frozenset(summary["notebooks"]))
            (docs / "lessons" / f"{name}.ipynb").write_text(json.dumps(page, indent=1), encoding="utf-8")
            lessons.append({"name": name, "title": _title(notebook, name), "results": run.get("results", {}),
                            **facts})
        _draw_map(docs / "assets" / "lifecycle-map.png")
        (docs / "assets" / "lifecycle.css").write_text(STYLE, encoding="utf-8")
        (docs / "index.md").write_text(home_page(summary, lessons), encoding="utf-8")
        config = Path(staging) / "mkdocs.yml"
        nav = [{lesson["title"]: f"lessons/{lesson['name']}.ipynb"} for lesson in lessons]
        config.write_text(json.dumps(_mkdocs_config(docs, out, nav), indent=2), encoding="utf-8")
        _run_mkdocs(config, staging)
    return out / "index.html"


def read_summary(build: Path) -> dict[str, Any]:
    """The ``summary.json`` of a run, or a :class:`ConfigError` that says how to make one."""
    path = Path(build) / "summary.json"
    if not path.is_file():
        raise ConfigError(f"no course run in {build}: {path} does not exist; run 'lifecycle run' (or 'make run') "
                          "first, or pass the folder of a run with --build")
    summary = json.loads(path.read_text())
    if not summary.get("notebooks"):
        raise ConfigError(f"{path} lists no notebooks; run 'lifecycle run' again")
    return summary


def _read_notebook(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path} is missing, though summary.json lists it; run 'lifecycle run' again")
    return json.loads(path.read_text(encoding="utf-8"))


def run_facts(notebook: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """When a lesson ran, with which parameters (papermill's, else the notebook's own defaults), for how
    long, and how it ended."""
    papermill = notebook.get("metadata", {}).get("papermill", {})
    parameters = {**_default_parameters(notebook), **(papermill.get("parameters") or {})}
    return {"started": papermill.get("start_time") or "", "parameters": parameters,
            "seconds": run.get("seconds", 0.0), "status": run.get("status", "unknown"),
            "error": run.get("error", ""), "cell": run.get("cell")}


def _default_parameters(notebook: dict[str, Any]) -> dict[str, Any]:
    for cell in notebook.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            values = {}
            try:
                body = ast.parse(source(cell)).body
            except SyntaxError:
                return {}  # IPython syntax (a magic): its values are not shown
            for node in body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        values[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue  # an expression, not a literal: not shown
            return values
    return {}


def _title(notebook: dict[str, Any], name: str) -> str:
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            heading = re.search(r"^#\s+(.+)$", source(cell), re.MULTILINE)
            if heading:
                return re.sub(r"[`*]", "", heading.group(1)).strip()
    return name


def _banner(facts: dict[str, Any]) -> str:
    parameters = ", ".join(f"{k}={v!r}" for k, v in sorted(facts["parameters"].items()))
    text = (f"Executed by <code>lifecycle run</code> on {html.escape(_when(facts['started']))} "
            f"in {facts['seconds']:.1f} s, with {html.escape(parameters) or 'its default parameters'}.")
    if facts["status"] != "ok":
        where = f" at cell {facts['cell']}" if facts["cell"] is not None else ""
        text += (f"<br><b>This lesson failed{where}:</b> {html.escape(facts['error'])}. The outputs below stop "
                 "there.")
    kind = "lifecycle-run" if facts["status"] == "ok" else "lifecycle-run lifecycle-run-failed"
    return f'<div class="{kind}">{text}</div>'


def _when(started: str) -> str:
    """``2026-12-01T20:03:15.56+00:00`` → ``2026-12-01 20:03 UTC`` (papermill writes UTC)."""
    match = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)", started or "")
    return f"{match.group(1)} {match.group(2)} UTC" if match else "an unknown date"


def home_page(summary: dict[str, Any], lessons: list[dict[str, Any]]) -> str:
    """The home page's Markdown: what the site is, the run's date, seed and profile, the map, and the
    summary table of what each lesson recorded (``lessons``: :func:`run_facts` plus name, title, results)."""
    seeds = sorted({repr(lesson["parameters"]["seed"]) for lesson in lessons if "seed" in lesson["parameters"]})
    ok = sum(lesson["status"] == "ok" for lesson in lessons)
    started = min((lesson["started"] for lesson in lessons if lesson["started"]), default="")
    rows = []
    for lesson in lessons:
        results = "<br>".join(f"<code>{html.escape(k)}</code> = {html.escape(format_value(v))}"
                              for k, v in lesson["results"].items()) or "—"
        status = "ok" if lesson["status"] == "ok" else f"<b>{html.escape(lesson['status'])}</b>"
        rows.append(f'<tr><td><a href="lessons/{lesson["name"]}.html">{html.escape(lesson["title"])}</a></td>'
                    f"<td>{status}</td><td>{lesson['seconds']:.1f}</td><td>{results}</td></tr>")
    return "\n".join([
        f"# {SITE_NAME}: the executed course", "",
        "One run of the course, every lesson executed headless with papermill. Every number, table and plot on "
        "these pages came from that run, on the machine that ran it; run the course yourself (`make run`) and "
        "your numbers will be your machine's. Quizzes are shown with their answers folded: think first, then open.",
        "", '<div class="lifecycle-facts"><table>',
        f"<tr><th>run</th><td>{html.escape(_when(started))}</td></tr>",
        f"<tr><th>profile</th><td>{html.escape(str(summary.get('profile', 'unknown')))}</td></tr>",
        f"<tr><th>seed</th><td>{html.escape(', '.join(seeds) or 'each lesson default')}</td></tr>",
        f"<tr><th>lessons</th><td>{ok} of {len(lessons)} ran to the end, "
        f"in {summary.get('seconds', 0):.1f} s</td></tr>",
        "</table></div>", "",
        "![The lifecycle this course walks: seven stages, from data versioning to monitoring, and the retraining "
        "that closes the loop](assets/lifecycle-map.png)", "",
        "## What each lesson recorded", "",
        "Each lesson records its key results with `lifecycle.record(...)`; `build/summary.json` holds them.", "",
        '<div class="lifecycle-summary"><table><thead><tr><th>lesson</th><th>status</th><th>seconds</th>'
        "<th>recorded results</th></tr></thead><tbody>", *rows, "</tbody></table></div>", ""])


def format_value(value: Any) -> str:
    """A recorded value as a reader wants it: floats to 4 significant digits, lists and dicts flattened."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value) or "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) or "{}"
    return str(value)


def _draw_map(path: Path) -> None:
    import matplotlib.pyplot as plt

    from lifecycle.course.environment import draw_lifecycle_map

    figure = draw_lifecycle_map()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _mkdocs_config(docs: Path, out: Path, nav: list[dict[str, str]]) -> dict[str, Any]:
    """mkdocs.yml (JSON is YAML): pages browsable from files, no web fonts, no MathJax (the lessons
    have no formulas; it would load from a CDN), previous/next links in every page's footer."""
    return {
        "site_name": SITE_NAME, "docs_dir": str(docs), "site_dir": str(out.resolve()), "use_directory_urls": False,
        "theme": {"name": "material", "font": False,
                  "features": ["navigation.footer", "navigation.sections", "navigation.top", "toc.follow"]},
        "extra_css": ["assets/lifecycle.css"],
        "markdown_extensions": ["tables", "attr_list", "md_in_html"],
        "plugins": [{"mkdocs-jupyter": {"execute": False, "include": ["*.ipynb"], "cache": False,
                                        "ignore_h1_titles": False}}],
        "nav": [{"Home": "index.md"}, {"Lessons": nav}],
    }


def _run_mkdocs(config: Path, cwd: str) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--clean", "--quiet", "-f", str(config)],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as err:
        raise CommandError(f"mkdocs build did not finish within {BUILD_TIMEOUT} s", err.cmd) from err
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        hint = "run 'make setup' (the site extra installs MkDocs)" if "No module named" in tail else \
            "the lines above name the page"
        raise CommandError(f"mkdocs build failed with exit code {done.returncode}:\n{tail}\nhint: {hint}",
                           done.args, done.returncode, tail)


def site_command(args: Any) -> int:
    """The ``lifecycle site`` command: build the site, check it, and say how to open it."""
    from lifecycle.course.site_check import check_site

    index = build_site(Path(args.build) if args.build else None, Path(args.out) if args.out else None)
    problems = check_site(index.parent)
    print(f"built the course site: {index}")
    print(f"open it in a browser: file://{index.resolve()}")
    print(f"or serve it on this machine: python -m http.server --bind 127.0.0.1 --directory {index.parent} 8000")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s): a link or image above does not resolve; if a lesson links to a file "
              "of the workspace that is gone, run the course again ('lifecycle run') and build again",
              file=sys.stderr)
    return 1 if problems else 0
