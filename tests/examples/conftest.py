"""Fixtures for the example applications: the examples loaded as modules, and headless Chromium.

The browser is Debian's /usr/bin/chromium driven by Playwright's sync API; no browser is ever
downloaded. The examples serve the Socket.IO 0.6 client from the repository's node_modules
(``make setup`` runs ``npm install``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
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


def load_example(relative_path: str, module_name: str) -> ModuleType:
    """Import ``examples/<relative_path>`` (the examples are scripts, not a package)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / relative_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def chatroom() -> ModuleType:
    """The chat-room example module; fails clearly when its browser client is not installed."""
    module = load_example("chatroom/chatroom.py", "chatroom_example")
    try:
        module.find_client_js()
    except module.ClientScriptMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    return module


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module (imported lazily so protocol tests need no Playwright).

    Module scope, not session: while Playwright's sync API is running it leaves its own event loop
    set as the main thread's running loop, and later tests that run an asyncio loop would fail.
    """
    from playwright.sync_api import sync_playwright

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
