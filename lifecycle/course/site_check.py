"""Checks of a built course site, without a browser: every internal link and image resolves, nothing
loads from the network, and every quiz answer is folded.

``lifecycle site`` runs :func:`check_site` after each build; the browser test
(``tests/browser/test_site_in_browser.py``) checks the same site as a reader's Chromium shows it.

Taught nowhere: see :mod:`lifecycle.course.site`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Attributes that make the browser fetch something when the page loads (links only when followed).
_LOADS = {("img", "src"), ("script", "src"), ("link", "href"), ("iframe", "src"), ("source", "src"),
          ("video", "src"), ("audio", "src"), ("embed", "src")}


@dataclass
class PageLinks:
    """What one page links to, loads and holds: hrefs, loaded URLs, element ids, and quiz answers."""

    hrefs: list[str] = field(default_factory=list)
    loads: list[tuple[str, str]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    quiz_answers: int = 0
    open_answers: int = 0


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageLinks()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("id", "name") if tag == "a" else ("id",):
            if values.get(name):
                self.page.ids.add(values[name])
        if tag == "a" and "href" in values:
            self.page.hrefs.append(values["href"])
        if tag == "link" and "stylesheet" not in values.get("rel", "") and "icon" not in values.get("rel", ""):
            return  # rel=canonical, prev/next: not fetched when the page loads
        for loading_tag, attribute in _LOADS:
            if tag == loading_tag and values.get(attribute, "").strip():
                self.page.loads.append((tag, values[attribute].strip()))
        if tag == "details" and "lifecycle-quiz-answer" in values.get("class", "").split():
            self.page.quiz_answers += 1
            self.page.open_answers += "open" in values


def read_page(path: Path) -> PageLinks:
    """Parse one HTML page."""
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser.page


def check_site(site: Path) -> list[str]:
    """Problems of the site in ``site`` (empty when it is sound).

    A problem is an internal link to a page or an anchor that does not exist, an image or script that
    is missing or would load from the network, an inline image that does not decode, or a quiz answer
    shown unfolded.
    """
    site = Path(site).resolve()
    pages = {path: read_page(path) for path in sorted(site.rglob("*.html"))}
    problems = []
    for path, page in pages.items():
        where = path.relative_to(site).as_posix()
        for tag, url in page.loads:
            problem = _load_problem(path, site, url)
            if problem:
                problems.append(f"{where}: <{tag}> {problem}")
        for href in page.hrefs:
            problem = _link_problem(path, site, href, pages)
            if problem:
                problems.append(f"{where}: link {href!r} {problem}")
        if page.open_answers:
            problems.append(f"{where}: {page.open_answers} of {page.quiz_answers} quiz answers are shown unfolded")
    return problems


def _load_problem(page: Path, site: Path, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "data":
        payload = url.partition(",")[2]
        if ";base64" in url.partition(",")[0]:
            try:
                payload = base64.b64decode(payload, validate=False)
            except (binascii.Error, ValueError):
                return "has an inline image that does not decode"
        return "" if payload else "has an empty inline image"
    if parts.scheme or parts.netloc:
        return f"loads {url} from the network"
    target = _target(page, site, parts.path)
    return "" if target is not None and target.is_file() else f"loads {url}, which is not in the site"


def _link_problem(page: Path, site: Path, href: str, pages: dict[Path, PageLinks]) -> str:
    parts = urlsplit(href)
    if parts.scheme in ("http", "https", "mailto") or parts.netloc:
        return ""  # a link out, followed only if the reader clicks it
    if parts.scheme == "javascript" or (not parts.path and not parts.fragment):
        return ""
    target = _target(page, site, parts.path) if parts.path else page
    if target is None or not (target.is_file() or (target / "index.html").is_file()):
        return "points to a page that is not in the site"
    target = target if target.is_file() else target / "index.html"
    fragment = unquote(parts.fragment)
    if fragment and target in pages and fragment not in pages[target].ids:
        return f"points to #{fragment}, which {target.relative_to(site).as_posix()} does not have"
    return ""


def _target(page: Path, site: Path, path: str) -> Path | None:
    # A path from the root is from the site's root (MkDocs writes them only in 404.html, served from there).
    start = site if path.startswith("/") else page.parent
    resolved = (start / unquote(path).lstrip("/")).resolve()
    return resolved if resolved == site or site in resolved.parents else None
