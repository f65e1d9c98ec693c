"""What a reader's browser sees on one page of the built book, checked.

:func:`check_page` loads a page of ``_build/html`` in a real browser
(Playwright driving Debian's Chromium), lets its scripts run (MathJax typesets
the equations, the theme builds its navigation) and returns a
:class:`PageReport`: what was counted and every problem found.  The book's
pages must have no problems (tests/browser/test_book_pages.py); deliberately
broken pages must each have the problem they were given
(tests/browser/test_checker.py).
"""

from __future__ import annotations

import html.parser
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

# The MyST sources' glue references: the roles {glue}`key`, {glue:text}`key`,
# ... and the directives ```{glue} / ```{glue:figure} ...
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`")
GLUE_DIRECTIVE = re.compile(
    r"^\s*(`{3,}|:{3,})\{glue(?::[a-z]+)?\}", re.MULTILINE
)

# Runs in the page once it has loaded: counts and problems that only the
# rendered page shows (after MathJax and the theme's scripts have run).
INSPECT_PAGE = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const math = Array.from(document.querySelectorAll('.math'));
  const untypeset = math.filter(e => !e.querySelector('mjx-container'))
                        .map(e => e.textContent.trim().slice(0, 60));
  // Raw TeX left in the text a reader sees (outside code and typeset math).
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    const m = node.textContent.match(/\\\\\\(|\\\\\\[|\\$\\$/);
    if (m) raw.push(node.textContent.trim().slice(0, 60));
  }
  const images = Array.from(document.images).map(img => ({
    src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0,
    width: img.naturalWidth }));
  const pasted = Array.from(document.querySelectorAll(
      '.pasted-text, .pasted-inline, .pasted-block'))
    .map(e => e.textContent.trim());
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  return {untypeset, raw, nmath: math.length, images, pasted, links,
          title: document.title};
}
"""


@dataclass
class PageReport:
    """What :func:`check_page` counted on one page, and what it found wrong."""

    url: str
    equations: int = 0
    images: int = 0
    internal_links: int = 0
    glued_values: int = 0
    problems: list[str] = field(default_factory=list)


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


_IDS_CACHE: dict[Path, set[str]] = {}


def anchors_in(path: Path) -> set[str]:
    """The ids (and ``name`` anchors) of an HTML file."""
    if path not in _IDS_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8"))
        _IDS_CACHE[path] = parser.ids
    return _IDS_CACHE[path]


def glue_references(source: Path) -> int:
    """How many glued values a page's source asks for (notebook markdown or a MyST file)."""
    if source.suffix == ".ipynb":
        cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        texts = [
            "".join(c["source"])
            for c in cells
            if c["cell_type"] == "markdown"
        ]
        # A figure's or table's caption lives in its cell's metadata and may
        # paste glued values too.
        texts += [
            c["metadata"]["mystnb"]["figure"].get("caption", "")
            for c in cells
            if "figure" in c.get("metadata", {}).get("mystnb", {})
        ]
    else:
        texts = [source.read_text(encoding="utf-8")]
    return sum(
        len(GLUE_ROLE.findall(t)) + len(GLUE_DIRECTIVE.findall(t))
        for t in texts
    )


def check_page(
    page,
    url: str,
    *,
    root: Path,
    origin: str,
    expected_glue: int,
    screenshot: Path | None = None,
) -> PageReport:
    """Load ``url`` in ``page`` (a Playwright page) and check it as a reader would see it.

    ``root`` is the folder served at ``origin`` (``_build/html``);
    ``expected_glue`` is the number of glued values the page's source asks for.
    Problems: console errors and uncaught script errors; requests that failed,
    returned an error status or left ``origin``; equations MathJax did not
    typeset and raw TeX delimiters in the text; images that did not load or
    have no size; links within the book whose file or anchor does not exist;
    glued values that are missing or empty.
    """
    report = PageReport(url)
    problems = report.problems

    def on_console(message):
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def on_request_failed(request):
        if request.url.startswith(origin):
            problems.append(
                f"request failed: {request.url} ({request.failure})"
            )

    def on_response(response):
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    def on_route(route):
        if route.request.url.startswith(
            origin
        ) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"external request: {route.request.url}")
            route.abort()

    page.on("console", on_console)
    page.on(
        "pageerror", lambda error: problems.append(f"script error: {error}")
    )
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    page.route("**/*", on_route)
    try:
        page.goto(url, wait_until="load")
        found = page.evaluate(INSPECT_PAGE)
        page.wait_for_load_state("networkidle")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.unroute("**/*")
        page.remove_listener("console", on_console)
        page.remove_listener("requestfailed", on_request_failed)
        page.remove_listener("response", on_response)

    report.equations = found["nmath"]
    problems += [
        f"equation not typeset: {text!r}" for text in found["untypeset"]
    ]
    problems += [f"raw TeX in the text: {text!r}" for text in found["raw"]]

    report.images = len(found["images"])
    problems += [
        f"image did not load: {img['src']}"
        for img in found["images"]
        if not img["ok"]
    ]

    for link in found["links"]:
        if not link.startswith(origin):
            continue  # outside the book (a DOI, say): a link, never a request
        report.internal_links += 1
        address, fragment = urldefrag(link)
        relative = unquote(urlsplit(address).path).lstrip("/")
        target = root / relative
        if target.is_dir() or not relative:
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"link to a missing page: {link}")
        elif fragment and unquote(fragment) not in anchors_in(target):
            problems.append(f"link to a missing anchor: {link}")

    report.glued_values = len(found["pasted"])
    empty = sum(1 for text in found["pasted"] if not text)
    if empty:
        problems.append(f"{empty} glued value(s) rendered empty")
    if report.glued_values != expected_glue:
        problems.append(
            f"{report.glued_values} glued values on the page, but its source asks for "
            f"{expected_glue} (a misspelt or missing glue key renders nothing)"
        )
    return report
