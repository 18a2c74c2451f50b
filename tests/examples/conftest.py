"""Fixtures for the example applications: the examples loaded as modules.

The examples serve the Socket.IO 0.6 client from the repository's node_modules (``make setup``
runs ``npm install``); the ``browser`` (Playwright's Chromium) and ``all_engines`` (Chromium, Firefox
and WebKit: tests/engines.py) fixtures come from tests/conftest.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"


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
