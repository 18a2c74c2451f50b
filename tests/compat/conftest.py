"""Fixtures for the 2010 compatibility tests: headless Chromium (Debian's /usr/bin/chromium) via Playwright.

Playwright and the browser live for one test module, never for the session: Playwright's sync API
leaves its event loop marked as running in the main thread while it is started, which would break
later tests that run an asyncio or Tornado loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing. Run `make test` as root (it installs it) or `sudo apt-get install chromium`.",
            pytrace=False,
        )
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
