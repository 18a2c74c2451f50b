"""Fixtures for the browser end-to-end tests: Debian's Chromium, Firefox ESR and WebKitGTK.

The ``engine`` fixture (tests/conftest.py, tests/engines.py) runs a test in each engine; ``make test``
installs the browsers when run as root and no browser is ever downloaded. The Socket.IO 0.6.3 client
comes from the socket.io@0.6.18 npm package that ``make setup`` installs under node_modules/, the v5
client from socket.io-client@4.x beside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sio_browser import CLIENT_JS, CLIENT_V5_JS, EchoPage, ServerRecord, echo_server

from tests.engines import Engine
from tornad_io.testing import AppServer


def _installed(path: Path, what: str) -> Path:
    if not path.is_file():
        pytest.fail(
            f"{what} is missing: {path} does not exist. "
            "Run `make setup` (it runs `npm install` at the top of the repository).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def socket_io_js() -> Path:
    """Path of the real Socket.IO 0.6.3 browser client installed by npm."""
    return _installed(CLIENT_JS, "the Socket.IO 0.6 browser client")


@pytest.fixture(scope="session")
def socket_io_v5_js() -> Path:
    """Path of the official socket.io-client 4.x browser build installed by npm."""
    return _installed(CLIENT_V5_JS, "the socket.io-client 4.x browser build")


@pytest.fixture
def open_page(engine: Engine) -> Iterator[Callable[[AppServer, ServerRecord, str], EchoPage]]:
    """``open_page(server, record, transport)`` opens page.html in the test's engine.

    Its windows are closed at the end of the test, whatever happened.
    """
    opened: list[EchoPage] = []

    def open_one(server: AppServer, record: ServerRecord, transport: str) -> EchoPage:
        page = EchoPage(engine, server, transport, record)
        opened.append(page)
        return page.open()

    yield open_one
    for page in opened:
        with contextlib.suppress(Exception):
            page.close()


@pytest.fixture
def start_echo_server(socket_io_js: Path) -> Iterator[Callable[..., tuple[AppServer, ServerRecord]]]:
    """``start_echo_server(**settings)`` runs the echo app and returns ``(server, record)``.

    Servers are stopped at the end of the test.
    """
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> tuple[AppServer, ServerRecord]:
            return stack.enter_context(echo_server(socket_io_js, **settings))

        yield start
