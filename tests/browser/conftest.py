"""A real browser on the built book: Debian's Chromium, driven by Playwright.

``make test-browser`` (part of ``make test``) builds the book, installs
Debian's ``chromium`` package when it is missing (``tools/install_chromium.sh``)
and runs these tests.  Playwright's own browser download is never used (and
could not be: the network is closed); it launches the system executable.  The
pages are served from ``_build/html`` by Python's ``http.server`` on loopback,
and Chromium is started with its background networking off, so the only
requests a page makes are the ones the page itself asks for, which
tests/browser/checker.py requires to stay on that server.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"

CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_executable() -> str:
    """The system Chromium, or a failure that says how to install it (never a skip)."""
    found = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail(
            "the browser tests need Debian's Chromium and it is not installed: run "
            "`make chromium` (as root, it runs `apt-get install -y chromium`), or install "
            "Chromium yourself and set CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(folder: Path):
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; returns ``(server, origin)``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def site():
    if not (SITE / "index.html").is_file():
        pytest.fail(
            "no built book in _build/html: run `make book` first",
            pytrace=False,
        )
    server, origin = serve(SITE)
    yield SITE, origin
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()
