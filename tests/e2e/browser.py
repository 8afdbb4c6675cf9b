"""A real browser for the e2e tier: Playwright (sync API) driving Debian's Chromium, and Airflow's login.

Never downloads a browser (``playwright install`` is not needed): Playwright starts the Chromium at
``$TIDBOPS_CHROMIUM`` (default ``/usr/bin/chromium``, the Debian package ``scripts/system-deps.sh``
installs), headless, with the flags that keep it quiet on a closed network (no background networking,
component updates, sync or QUIC). Each launch gets a fresh, empty profile (Playwright creates a new
user-data directory per launch and removes it at close), and each user a new, isolated context (its own
cookies), so a test can hold a logged-in user and a stranger side by side.

Outside CI a machine without Chromium or Playwright skips the browser tests, naming what is missing;
under ``CI=true`` the same is a failure: CI must run them.

Screenshots and downloads are test artifacts, kept under ``$TIDBOPS_TEST_ARTIFACTS`` (default: pytest's
temporary directory, ``…/artifacts``); the test prints where they are.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Frame, Page

CHROMIUM = Path(os.environ.get("TIDBOPS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1440, 900
#: how long a page, the login or the iframe may take (ms); the playground Airflow is one busy SQLite
TIMEOUT_MS = 30_000
#: the plugin's nav entry (``external_views`` in plugins/tidbops_plugin.py) and where Airflow embeds it
NAV_NAME = "Data protection"
NAV_ROUTE = "/plugin/data-protection"
APP_PREFIX = "/tidbops"


def require_browser() -> None:
    """Skip (fail under CI) unless Playwright and the Chromium executable are here."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (requirements-dev.txt)")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (Debian package chromium: scripts/system-deps.sh)")
    if not missing:
        return
    message = "no real browser: missing " + "; ".join(missing)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI runs the browser tests: install it)", pytrace=False)
    pytest.skip(message)


def artifacts_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """Where a test module's screenshots and downloads go (created; old files of that name replaced)."""
    base = os.environ.get("TIDBOPS_TEST_ARTIFACTS")
    root = Path(base) if base else tmp_path_factory.getbasetemp() / "artifacts"
    path = root / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright; closed (and its profile removed) on exit."""
    from playwright.sync_api import sync_playwright

    require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS), timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    """A fresh context (no cookies) that accepts downloads; relative ``goto`` paths go to ``base_url``."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT}, accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def login(context: BrowserContext, username: str, password: str) -> Page:
    """Sign in through Airflow's own login page (SimpleAuthManager's form) as a person does.

    Opening Airflow's home page redirects to ``/auth/login``; the form's answer sets the UI's JWT cookie
    and returns to the home page. Returns that page.
    """
    page = context.new_page()
    page.goto("/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return page


def open_nav_view(page: Page, name: str = NAV_NAME) -> Frame:
    """Click the plugin's entry in Airflow's navigation; returns the iframe Airflow embeds the view in,
    once its document has loaded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto("/")
    route = re.compile(re.escape(NAV_ROUTE) + "$")
    link = page.get_by_role("link", name=name, exact=True)
    # Airflow's React shell may re-render its navigation while plugin menus load, so a click can land on
    # a link that is replaced a moment later and go nowhere. Click the live link again, at most 3 times;
    # a link that never navigates still fails.
    for attempt in range(3):
        link.wait_for(state="visible")
        link.click()
        try:
            page.wait_for_url(route, timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    return embedded_frame(page)


def embedded_frame(page: Page) -> Frame:
    """The iframe of a plugin view (``/plugin/<route>``), after its document has loaded."""
    handle = page.locator(f"iframe[src*='{APP_PREFIX.strip('/')}']").element_handle()
    frame = handle.content_frame()
    assert frame is not None, "the plugin view has no iframe document"
    frame.wait_for_load_state()
    return frame


def screenshot(page: Page, directory: Path, name: str) -> Path:
    """A full-page PNG of what the user sees (Airflow's frame with the view inside)."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def screenshot_document(frame: Frame, directory: Path, name: str) -> Path:
    """A full-length PNG of the embedded page alone (the iframe scrolls inside Airflow's window, so a
    screenshot of the window shows only its top): the frame's URL opened in a page of the same context."""
    page = frame.page.context.new_page()
    try:
        page.goto(frame.url)
        path = directory / f"{name}-document.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    finally:
        page.close()
