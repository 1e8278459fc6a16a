"""A reader's view of the course site: Chromium opens every page of a built site from its files, as
``lifecycle site`` says to; every page loads with no error and no request off the machine, every image
shows, every internal link and anchor resolves, and every quiz answer is folded until the reader opens it.
The same build is checked without a browser first (those tests need no Chromium).

The site is built from a real ``lifecycle run`` of the small course in ``tests/fixtures/site`` (a plot,
a quiz, a widget, a report in the workspace, links between lessons); the site of the whole course is
checked without a browser in ``tests/notebooks/test_site_of_course.py``. Needs Debian's ``chromium``,
as the JupyterLab test does.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest

from lifecycle.config import load_settings
from lifecycle.course.quiz import load_bank
from lifecycle.course.site_check import check_site

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "site"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]



@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture course run by the course runner, and its site built by ``lifecycle site``: (settings, home
    page, exit status, what the command printed)."""
    from lifecycle.course.runner import run_course
    from lifecycle.course.site import site_command

    folder = tmp_path_factory.mktemp("site-course")
    shutil.copytree(FIXTURE, folder / "course")
    settings = load_settings(root=folder / "course", build=folder / "build", workspace=folder / "workspace")
    run_course("smoke", settings=settings, progress=False)
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as printed:
        patch.setenv("LIFECYCLE_ROOT", str(settings.root))  # the fixture course's quizzes
        status = site_command(SimpleNamespace(build=str(settings.build), out=None))
    return settings, settings.build / "site" / "index.html", status, printed.getvalue()


@pytest.fixture(scope="module")
def site(built) -> Path:
    return built[1].parent


def test_a_built_site_has_every_page_with_no_problem(built):
    settings, index, _, _ = built
    site = index.parent
    assert check_site(site) == []
    assert sorted(p.name for p in (site / "lessons").glob("*.html")) == ["00_intro.html", "01_widgets.html"]
    intro = (site / "lessons" / "00_intro.html").read_text()
    assert intro.count('<details class="lifecycle-quiz-answer">') == len(load_bank("00_intro", settings))
    assert 'src="data:image/png;base64,' in intro  # the run's plot, embedded
    assert 'href="01_widgets.html"' in intro and "Executed by <code>lifecycle run</code>" in intro
    widgets = (site / "lessons" / "01_widgets.html").read_text()
    assert "An interactive widget was here" in widgets and "jupyter-widgets" not in widgets.split("<article")[1]
    assert (site / "files" / "01_widgets" / "fixture-report.html").is_file()
    home = index.read_text()
    assert "<tr><th>profile</th><td>smoke</td></tr>" in home and "<tr><th>seed</th><td>3</td></tr>" in home
    assert "<code>points</code> = 0, 1, 2" in home


def test_the_site_command_checks_the_site_and_says_how_to_open_it(built):
    _, index, status, printed = built
    assert status == 0
    assert f"open it in a browser: file://{index.resolve()}" in printed
    assert "python -m http.server --bind 127.0.0.1" in printed


def _local(url: str, site: Path) -> tuple[Path, str] | None:
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path)), unquote(parts.fragment)


def test_every_page_loads_shows_its_images_resolves_its_links_and_folds_its_answers(site, chromium, chromium_args):
    from playwright.sync_api import expect, sync_playwright

    # 404.html is for web servers (its links start at the server's root); every other page is read from files.
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    lessons = sorted((site / "lessons").glob("*.html"))
    assert [p.name for p in lessons] == ["00_intro.html", "01_widgets.html"]
    ids: dict[Path, set[str]] = {}
    links: list[tuple[Path, str]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=chromium_args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        off_machine, failed, errors = [], [], []
        page.on("request", lambda r: off_machine.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        answers = 0
        for path in pages:
            response = page.goto(path.as_uri())
            page.wait_for_load_state("load")
            where = path.relative_to(site)
            assert response is None or response.ok, f"{where} did not load"
            assert page.title(), f"{where} has no title"
            images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.src.slice(0, 60), "
                                                      "i.complete && i.naturalWidth > 0])")
            assert all(shown for _, shown in images), f"{where}: images that do not show: {images}"
            ids[path] = set(page.eval_on_selector_all("[id], a[name]", "els => els.map(e => e.id || e.name)"))
            links += [(path, href) for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")]
            details = page.locator("details.lifecycle-quiz-answer")
            if path in lessons and details.count():
                answers += details.count()
                assert page.eval_on_selector_all("details.lifecycle-quiz-answer", "ds => ds.filter(d => d.open)") == []
                answer = details.first.locator("ul")
                expect(answer).to_be_hidden()
                details.first.locator("summary").click()
                expect(answer).to_be_visible()
            if path in lessons:  # the navigation bar, and previous/next in the footer
                expect(page.locator("nav.md-nav--primary")).to_contain_text("Widgets and reports")
                assert page.locator("a.md-footer__link").count() >= 1, f"{where} has no previous/next link"
        home = site / "index.html"
        page.goto(home.as_uri())
        expect(page.locator("article")).to_contain_text("profile")
        expect(page.locator("article img[src$='lifecycle-map.png']")).to_be_visible()
        browser.close()
    assert off_machine == [] and failed == [] and errors == []
    assert answers == 2  # the fixture quiz's two questions
    broken = []
    for source, href in links:
        target = _local(href, site)
        if target is None:
            continue  # a link out of the site (Material's credit), followed only when clicked
        path, fragment = target
        path = path / "index.html" if path.is_dir() else path
        if not path.is_file():
            broken.append(f"{source.relative_to(site)} -> {href}: no such page")
        elif fragment and path in ids and fragment not in ids[path]:
            broken.append(f"{source.relative_to(site)} -> {href}: no such anchor")
    assert broken == []
    assert len(links) > 20  # navigation, tables of contents, footers and the lessons' own links
