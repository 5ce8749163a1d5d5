"""Open a page in real headless Chromium (Debian's /usr/bin/chromium) with the network blocked.

Used by map and report tests: returns JavaScript errors, console errors, blocked
network requests, and lets the caller assert on the DOM and save a screenshot.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def require_browser():
    if CHROMIUM is None:
        pytest.skip("chromium not installed (scripts/setup.sh installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright not installed (pip install -e .[test])")


@contextmanager
def browser_session():
    """Yield ``open(path, width=, height=, wait_ms=)``, a context manager like :func:`open_page` that reuses one
    Chromium for every page (a launch costs about a second; a test that opens many pages shares one)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield lambda path, **kw: _page(browser, path, **kw)
        finally:
            browser.close()


@contextmanager
def open_page(path: Path, *, width: int = 1280, height: int = 900, wait_ms: int = 500):
    """Yield (page, events) for a local HTML file; every non-file request is aborted and recorded."""
    with browser_session() as open_one, open_one(path, width=width, height=height, wait_ms=wait_ms) as got:
        yield got


@contextmanager
def open_pages(browser_open, views, *, wait_ms: int = 500):
    """Yield ``[(page, events), ...]`` for ``views`` (``(path, width, height)``), all open at once.

    ``browser_open`` is what :func:`browser_session` yields.  The pages load one
    after another, then one wait of ``wait_ms`` follows the last load, so each
    page has had at least ``wait_ms`` since its own load when it is measured,
    without a test of many pages waiting once per page.
    """
    from contextlib import ExitStack

    with ExitStack() as stack:
        got = [stack.enter_context(browser_open(path, width=w, height=h, wait_ms=0)) for path, w, h in views]
        if got:
            got[-1][0].wait_for_timeout(wait_ms)
        yield got


@contextmanager
def _page(browser, path: Path, *, width: int = 1280, height: int = 900, wait_ms: int = 500):
    events = {"page_errors": [], "console_errors": [], "blocked_requests": [], "dialogs": []}
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: events["page_errors"].append(str(e)))
        page.on("console", lambda m: events["console_errors"].append(m.text) if m.type == "error" else None)

        def on_dialog(d):
            events["dialogs"].append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)

        def route(r):
            url = r.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                r.continue_()
            else:
                events["blocked_requests"].append(url)
                r.abort()

        page.route("**/*", route)
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_timeout(wait_ms)
        yield page, events
    finally:
        context.close()
