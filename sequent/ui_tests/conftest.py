"""Browser tests: the app served for real (pytest-django's ``live_server``) and driven by
Playwright on Debian's Chromium.

Every test here is marked ``browser``. When /usr/bin/chromium is missing they skip with a
loud reason, unless SEQUENT_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure.
``scripts/run_tests.py`` installs Chromium with apt-get first when it runs as root.

Playwright's sync API runs an asyncio event loop in the test's thread, and Django then
refuses ORM calls from that thread (SynchronousOnlyOperation) although nothing runs
concurrently: the loop only drives the browser. The ``page`` fixture therefore sets
DJANGO_ALLOW_ASYNC_UNSAFE for the test's duration only, and starts and stops Playwright
per test, so no loop is left behind for the ordinary tests that share the worker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
MISSING = (
    "!!! BROWSER TESTS SKIPPED: /usr/bin/chromium is missing. "
    "Install it with `apt-get install -y chromium` (make test does so when run as root). !!!"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the app in headless Chromium through Playwright")


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("SEQUENT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SEQUENT_REQUIRE_BROWSER=1 but {CHROMIUM} is missing", pytrace=False)
    pytest.skip(MISSING)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A headless Chromium for one test."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser, live_server):
    """``new_page()`` opens a fresh browser context (its own cookies) aimed at the live server."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """One browser page on the live server."""
    return new_page()


def log_in(page, email: str, password: str) -> None:
    """Log in through the login form and wait for the home page."""
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG under var/screenshots/ (not in git); the best go to docs/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# A desktop browser's user agent. Headless Chromium announces itself as "HeadlessChrome",
# which click and open tracking rightly count as a machine; a flow that plays a person
# reading an email uses this instead.
PERSON_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)


@pytest.fixture
def person_page(browser, live_server):
    """A page whose browser reads as a person's (see PERSON_USER_AGENT), on the live server."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}, user_agent=PERSON_USER_AGENT
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def mail_catcher(settings, tmp_path, monkeypatch, live_server):
    """The real mail catcher of ``make run`` on a free port, keeping mail under a temporary
    var directory; tracked links in sent emails point at the live server. Yields the port."""
    from sequent.mail import catcher
    from sequent.mail.tests.servers import free_port

    settings.VAR_DIR = tmp_path
    settings.SEQUENT_BASE_URL = live_server.url
    port = free_port()
    monkeypatch.setenv("SEQUENT_CATCHER_PORT", str(port))
    controller = catcher.make_controller()
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def demo_mail(mail_catcher, rep):
    """The rep's demo mailbox (sending to the mail catcher) and demo template, as ``make run``
    seeds them."""
    from sequent.mail.actions import do_seed_demo_mail
    from sequent.mail.models import Mailbox

    do_seed_demo_mail(rep)
    return Mailbox.objects.get(owner=rep)


def open_user_menu(page, item: str) -> None:
    """Open the user menu (top right) and follow *item*, e.g. "Mail catcher"."""
    page.locator("details[data-menu=user] summary").click()
    page.get_by_role("menuitem", name=item).click()


def view_screenshot(page, name: str, focus=None) -> Path:
    """Save what the 1280x800 window shows (with *focus*, a locator, scrolled into view) as
    var/screenshots/<name>.png: the size docs/screenshots/ wants."""
    if focus is not None:
        focus.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def patient_expect() -> Iterator[None]:
    """``expect()`` waits as long as locator actions do (15 s, not its own 5 s): on a busy
    machine a page that polls or a worker run between steps can take longer than 5 s."""
    from playwright.sync_api import expect

    previous = expect._timeout
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=previous)
