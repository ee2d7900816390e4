"""What the browser tests share: Debian's Chromium through Playwright's sync API, a tab at a
desk's or a phone's size, logging in, screenshots under tests/screenshots/ (git-ignored; or
$SHOP_SCREENSHOTS), and the checks every page gets at phone width."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser there is a failure
        raise RuntimeError(f"{CHROMIUM} is missing in CI")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "password-123"
DESK = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = Path(os.environ.get("SHOP_SCREENSHOTS") or Path(__file__).resolve().parent / "screenshots")
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(app):
    """The real server (`shop serve`, one worker) for one browser test module."""
    from tests.server import running_server

    with running_server(workers=1) as url:
        yield url


@contextmanager
def browser():
    """Chromium, for the length of one test. Playwright's sync API runs its own event loop
    while it is open, so it is opened inside the test, after the (async) data fixtures have
    run, and closed before they are torn down."""
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def tab(chromium, size: dict[str, int] = DESK):
    """A fresh tab (its own cookies) at a desk's or a phone's size; no JavaScript errors allowed."""
    phone = size["width"] < 600
    context = chromium.new_context(
        viewport=size, locale="zh-CN", timezone_id="Asia/Shanghai", is_mobile=phone, has_touch=phone, device_scale_factor=1
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


@contextmanager
def browser_page(size: dict[str, int] = DESK):
    with browser() as chromium, tab(chromium, size) as page:
        yield page


def log_in(page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# what sticks out of the screen: the document wider than the window, or a box (a table's
# scrolling box, a card) whose right edge is beyond it
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push('document ' + document.documentElement.scrollWidth + ' > ' + width);
  for (const el of document.querySelectorAll('main *')) {
    if (el.closest('.table-wrap, .members, nav, .chart-name') && !el.matches('.table-wrap')) continue;  // scrolls in its box
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden' || style.position === 'fixed') continue;
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 1) out.push(el.tagName + '.' + el.className + ' right ' + Math.round(r.right));
  }
  return out.slice(0, 8);
}"""


def fits_the_phone(page) -> None:
    """Nothing wider than the screen: tables scroll inside their own box, if at all."""
    assert page.evaluate(OVERFLOW) == [], page.url
