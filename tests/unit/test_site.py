"""The course site: lesson pages that need no kernel, the home page, and the site check. A real build of
a small course, and a reader's Chromium on it, are in tests/browser/test_site_in_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.config import load_settings
from lifecycle.course.quiz import WIDGET_MIMETYPE, load_bank
from lifecycle.course.site import build_site, format_value, home_page, read_summary, run_facts
from lifecycle.course.site_check import check_site
from lifecycle.course.site_pages import quiz_html, static_notebook
from lifecycle.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _cell(kind: str, source: str, outputs: list | None = None, tags: list | None = None) -> dict:
    cell = {"cell_type": kind, "metadata": {"tags": tags or []}, "source": source}
    if kind == "code":
        cell.update(outputs=outputs or [], execution_count=1)
    return cell


def _executed(tmp_path: Path) -> dict:
    report = tmp_path / "workspace" / "reports" / "drift.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>a report</html>")
    return {"metadata": {"widgets": {"state": {}}, "papermill": {
                "input_path": str(tmp_path / "notebooks" / "07_monitoring.ipynb"),
                "start_time": "2026-12-01T20:03:15.567860+00:00", "parameters": {"seed": 7}}},
            "cells": [
                _cell("markdown", "# 07 · Monitoring with `evidently`\n\nSee [lesson 06](06_canary_release.ipynb#quiz)"
                                  " and [the exercise](../exercises/07_drift_or_concept.ipynb)."),
                _cell("code", "seed = 42", tags=["parameters"]),
                _cell("markdown", "## The `Report`"),
                _cell("code", "slider", [{"output_type": "display_data", "metadata": {}, "data": {
                    WIDGET_MIMETYPE: {"model_id": "abc"}, "text/plain": "IntSlider(value=3)"}}]),
                _cell("code", "display(HTML(link))", [{"output_type": "display_data", "metadata": {}, "data": {
                    "text/html": '<a href="../workspace/reports/drift.html">report</a> '
                                 '<a href="../workspace/reports/gone.html">gone</a>'}}]),
                _cell("code", 'show_quiz("06_canary_release", reveal=True)', [
                    {"output_type": "display_data", "metadata": {},
                     "data": {WIDGET_MIMETYPE: {}, "text/plain": "Quiz"}},
                    {"output_type": "stream", "name": "stdout", "text": "Answer key: a, b"}]),
            ]}


def test_a_lesson_page_needs_no_kernel_and_keeps_the_runs_outputs(tmp_path):
    settings = load_settings()
    docs = tmp_path / "docs"
    page = static_notebook(_executed(tmp_path), settings, docs, "07_monitoring", "<div>banner</div>",
                           frozenset({"06_canary_release", "07_monitoring"}))
    cells = page["cells"]
    assert "widgets" not in page["metadata"]
    assert [c["source"] for c in cells[:2]] == [
        "# 07 · Monitoring with <code>evidently</code>\n\nSee [lesson 06](06_canary_release.html#quiz) and "
        "[the exercise](../exercises/07_drift_or_concept.ipynb).", "<div>banner</div>"]
    assert cells[3]["source"] == "## The <code>Report</code>"
    note = cells[4]["outputs"][0]["data"]["text/html"]
    assert "open this notebook in JupyterLab" in note and "IntSlider(value=3)" in note
    linked = cells[5]["outputs"][0]["data"]["text/html"]
    assert 'href="../files/07_monitoring/drift.html"' in linked and 'href="../workspace/reports/gone.html"' in linked
    assert (docs / "files" / "07_monitoring" / "drift.html").read_text() == "<html>a report</html>"
    quiz = cells[6]["outputs"]
    assert len(quiz) == 1 and quiz[0]["data"]["text/html"].startswith('<div class="lifecycle-static-quiz"')
    assert "Answer key" not in json.dumps(quiz)  # a revealed key would show the answers unfolded


def test_a_static_quiz_folds_every_answer_with_every_explanation():
    questions = load_bank("06_canary_release", load_settings())
    text = quiz_html("06_canary_release", questions)
    assert text.count('<details class="lifecycle-quiz-answer">') == len(questions)
    assert " open" not in text.replace("open it below", "")
    first = questions[0]
    answer = ", ".join("abcdefgh"[i] for i in first.correct)
    assert f"<p><b>Answer: {answer}</b></p>" in text
    for option in first.options:
        assert option.explanation.split("`")[0][:40] in text


def test_the_home_page_has_the_runs_date_seed_profile_and_results():
    summary = {"profile": "smoke", "seconds": 12.5, "notebooks": {"00_start_here": {}, "01_data_versioning": {}}}
    papermill = {"start_time": "2026-12-01T20:03:15+00:00", "parameters": {"seed": 42}}
    lessons = [
        {"name": "00_start_here", "title": "00 · Start here", "results": {"data_rows": 20000, "fraud_rate": 0.01512},
         **run_facts({"metadata": {"papermill": papermill}}, {"seconds": 3.2, "status": "ok"})},
        {"name": "01_data_versioning", "title": "01 · Data", "results": {},
         **run_facts({"cells": [_cell("code", "seed = 42\nrows = 10 * 2", tags=["parameters"])]},
                     {"seconds": 1.0, "status": "failed", "error": "KeyError: 'x'", "cell": 4})}]
    text = home_page(summary, lessons)
    assert "<tr><th>run</th><td>2026-12-01 20:03 UTC</td></tr>" in text
    assert "<tr><th>profile</th><td>smoke</td></tr>" in text and "<tr><th>seed</th><td>42</td></tr>" in text
    assert "1 of 2 ran to the end, in 12.5 s" in text
    assert '<a href="lessons/00_start_here.html">00 · Start here</a>' in text
    assert "<code>fraud_rate</code> = 0.01512" in text and "<b>failed</b>" in text
    assert "](assets/lifecycle-map.png)" in text
    assert lessons[1]["parameters"] == {"seed": 42}  # rows = 10 * 2 is no literal: not shown


def test_recorded_values_read_as_a_reader_wants_them():
    assert format_value(0.123456) == "0.1235" and format_value(True) == "true" and format_value(None) == "none"
    assert format_value([5, 25, 0.5]) == "5, 25, 0.5" and format_value({"a": 1.0, "b": [2]}) == "a: 1, b: 2"


def test_no_run_means_a_clear_error_and_no_folder_of_other_files_is_emptied(tmp_path):
    with pytest.raises(ConfigError, match=r"no course run in .*summary.json does not exist; run 'lifecycle run'"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"notebooks": {"00_start_here": {}}}))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"holds files but no site \(no index.html\); give an empty or new folder"):
        build_site(tmp_path, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_the_site_check_finds_broken_links_missing_images_network_loads_and_open_answers(tmp_path):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "logo.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<h2 id="top">x</h2><a href="lessons/a.html#quiz">a</a><a href="#top">top</a><img src="logo.png">'
        '<a href="https://example.org/">out</a><img src="data:image/png;base64,iVBORw0KGgo=">')
    (tmp_path / "lessons" / "a.html").write_text('<div id="quiz"><details class="lifecycle-quiz-answer"></details>'
                                                 '</div><a href="../index.html">home</a>')
    assert check_site(tmp_path) == []
    (tmp_path / "lessons" / "b.html").write_text(
        '<a href="../missing.html">x</a><a href="a.html#nowhere">y</a><img src="../none.png">'
        '<script src="https://cdn.example.org/x.js"></script><details class="lifecycle-quiz-answer" open></details>')
    assert check_site(tmp_path) == [
        "lessons/b.html: <img> loads ../none.png, which is not in the site",
        "lessons/b.html: <script> loads https://cdn.example.org/x.js from the network",
        "lessons/b.html: link '../missing.html' points to a page that is not in the site",
        "lessons/b.html: link 'a.html#nowhere' points to #nowhere, which lessons/a.html does not have",
        "lessons/b.html: 1 of 1 quiz answers are shown unfolded"]
