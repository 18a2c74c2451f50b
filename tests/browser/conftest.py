"""Fixtures for the browser end-to-end tests: Debian's Chromium driven by Playwright (sync API).

The browser is /usr/bin/chromium (``make test`` installs it when run as root); no browser is ever
downloaded. The Socket.IO 0.6.3 client comes from the socket.io@0.6.18 npm package that
``make setup`` installs under node_modules/.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from sio_browser import CLIENT_JS, ServerRecord, echo_server

from tornad_io.testing import AppServer

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


@pytest.fixture(scope="session")
def socket_io_js() -> Path:
    """Path of the real Socket.IO 0.6.3 browser client installed by npm."""
    if not CLIENT_JS.is_file():
        pytest.fail(
            f"the Socket.IO 0.6 browser client is missing: {CLIENT_JS} does not exist. "
            "Run `make setup` (it runs `npm install` at the top of the repository).",
            pytrace=False,
        )
    return CLIENT_JS


# Playwright's sync API keeps its asyncio loop marked as running in the main thread for as long as
# it is started, which breaks every later test that runs an event loop there (Tornado's
# AsyncTestCase, asyncio.run: "Cannot run the event loop while another loop is running").
# So Playwright and the browser live for one test module only, not for the whole session.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the test module (see above for why not for the session)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing. Run `make test` as root (it installs it) or `sudo apt-get install chromium`.",
            pytrace=False,
        )
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test."""
    context = browser.new_context()
    yield context
    context.close()


@pytest.fixture
def start_echo_server(socket_io_js: Path) -> Iterator[Callable[..., tuple[AppServer, ServerRecord]]]:
    """``start_echo_server(**settings)`` runs the echo app and returns ``(server, record)``.

    Servers are stopped at the end of the test.
    """
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> tuple[AppServer, ServerRecord]:
            return stack.enter_context(echo_server(socket_io_js, **settings))

        yield start
