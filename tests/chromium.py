"""Headless Chromium for every browser test: Debian's /usr/bin/chromium through Playwright's sync API.

No browser is ever downloaded (``playwright install`` is never run). The ``browser`` fixture in
tests/conftest.py lives for one test module, never for the session: while Playwright's sync API is
started it leaves its event loop marked as running in the main thread, which breaks every later
test that runs an asyncio or Tornado loop ("Cannot run the event loop while another loop is running").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's network is closed: no background calls
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing. Run `make test` as root (it installs it) or `sudo apt-get install chromium`.",
            pytrace=False,
        )
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
