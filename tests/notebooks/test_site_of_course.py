"""The site of the whole smoke course (the shared run): every lesson has its page, its plots embedded and
its quiz folded, and no link, image or script is broken or loads from the network.

A reader's Chromium is in tests/browser/test_site_in_browser.py, on a small fixture course.
"""

from __future__ import annotations

import nbformat
import pytest

from lifecycle.config import load_settings
from lifecycle.course.quiz import load_bank
from lifecycle.course.site import build_site
from lifecycle.course.site_check import check_site, read_page


@pytest.mark.slow
@pytest.mark.timeout(1_200)
def test_the_course_site_has_every_lesson_and_no_broken_link(smoke_course, tmp_path):
    index = build_site(smoke_course.build, tmp_path / "site")
    site = index.parent
    assert check_site(site) == []
    names = [notebook.stem for notebook in smoke_course.notebooks]
    assert sorted(p.stem for p in (site / "lessons").glob("*.html")) == names
    settings = load_settings()
    for notebook in smoke_course.notebooks:
        page = read_page(site / "lessons" / f"{notebook.stem}.html")
        assert page.quiz_answers == len(load_bank(notebook.stem, settings)), f"{notebook.stem}: a quiz is missing"
        plots = sum("image/png" in out.get("data", {}) for cell in nbformat.read(notebook, as_version=4).cells
                    for out in cell.get("outputs", []))
        shown = sum(url.startswith("data:image/png") for tag, url in page.loads if tag == "img")
        assert shown == plots, f"{notebook.stem}: {plots} plots in the run, {shown} on its page"
    home = index.read_text()
    assert f"<tr><th>profile</th><td>{smoke_course.summary['profile']}</td></tr>" in home
    assert "<tr><th>seed</th><td>42</td></tr>" in home
    for name in names:
        assert f'href="lessons/{name}.html"' in home
