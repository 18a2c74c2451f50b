"""Helpers for the browser end-to-end tests: an echo application and a driver for page.html.

Only the public tornad_io API is used: ``SocketIOHandler`` with its ``on_open`` / ``on_message`` /
``on_close`` hooks, ``send``, ``routes``, the documented application settings and
``tornad_io.testing.AppServer``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.engines import Engine, Page, javascript, wait_until
from tests.helpers import static_rule
from tornad_io import SocketIOHandler
from tornad_io.testing import AppServer

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PAGE_HTML = HERE / "page.html"
SHIMS_JS = HERE / "shims.js"
CLIENT_JS = REPO_ROOT / "node_modules" / "socket.io" / "support" / "socket.io-client" / "socket.io.js"
#: The official socket.io-client 4.x browser build (Socket.IO v5 over Engine.IO v4), also from npm.
CLIENT_V5_JS = REPO_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

RESOURCE = "socket.io"
#: The transports the stock client uses in today's browsers (websocket, and its fallbacks).
BROWSER_TRANSPORTS = ("websocket", "xhr-polling", "jsonp-polling")
#: All six, in the client's order of preference.
ALL_TRANSPORTS = ("websocket", "flashsocket", "htmlfile", "xhr-multipart", "xhr-polling", "jsonp-polling")
#: Transports that need a page shim (shims.js) standing in for IE, Firefox 3 or Flash Player.
SHIMMED_TRANSPORTS = frozenset({"flashsocket", "htmlfile", "xhr-multipart"})


class ServerRecord:
    """What the echo handlers saw, written from the server thread and read from the test thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.opens = 0
        self.closes = 0
        self.received: list[Any] = []
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.closed_again = threading.Event()

    def note_open(self) -> None:
        with self._lock:
            self.opens += 1
        self.opened.set()

    def note_message(self, message: Any) -> None:
        with self._lock:
            self.received.append(message)

    def note_close(self) -> None:
        with self._lock:
            self.closes += 1
            count = self.closes
        if count == 1:
            self.closed.set()
        else:
            self.closed_again.set()

    def summary(self) -> str:
        with self._lock:
            return f"server saw opens={self.opens} closes={self.closes} received={self.received!r}"


class NoFavicon(tornado.web.RequestHandler):
    """Answers the browser's automatic favicon request, so that no 404 clutters the page's log."""

    def get(self) -> None:
        self.set_status(204)


def make_echo_app(record: ServerRecord, client_js: Path = CLIENT_JS, **settings: Any) -> tornado.web.Application:
    """An application whose Socket.IO handler greets with "welcome" and echoes every message."""

    class EchoHandler(SocketIOHandler):  # type: ignore[misc]
        def on_open(self, *args: Any, **kwargs: Any) -> None:
            record.note_open()
            self.send("welcome")

        def on_message(self, message: Any) -> None:
            record.note_message(message)
            self.send(message)

        def on_close(self) -> None:
            record.note_close()

    return tornado.web.Application(
        [
            static_rule(r"/socket\.io\.js", client_js, "text/javascript"),
            static_rule(r"/shims\.js", SHIMS_JS, "text/javascript"),
            static_rule(r"/page\.html", PAGE_HTML, "text/html; charset=utf-8"),
            (r"/favicon\.ico", NoFavicon),
            EchoHandler.routes(RESOURCE),
        ],
        **settings,
    )


@contextlib.contextmanager
def echo_server(client_js: Path = CLIENT_JS, **settings: Any) -> Iterator[tuple[AppServer, ServerRecord]]:
    """Run the echo application on 127.0.0.1 in a background thread."""
    record = ServerRecord()
    with AppServer(make_echo_app(record, client_js, **settings)) as server:
        yield server, record


class LoggedPage:
    """A test page that records its events in ``window.LOG``: evaluation, the log, closing, failure reports.

    Subclasses set ``engine``, ``page`` and ``record`` and name themselves in :meth:`heading`.
    """

    engine: Engine
    page: Page | None
    record: Any  # something with a summary() of what the server saw, or None

    def __init__(self) -> None:
        self._last_log: list[dict[str, Any]] = []
        self._notes: list[str] = []  # the engine's notes, as last read before the page closed

    def heading(self) -> str:
        raise NotImplementedError

    def describe(self, notes_tail: int = 0) -> str:
        """The page's event log, what the engine noticed and what the server saw, for failure messages."""
        lines = [f"--- {self.heading()} LOG:"]
        log = self._last_log
        if self.page is None:
            lines.append("  (page closed; its log as last read)")
        else:
            try:
                log = self.log()
            except Exception as exc:
                lines.append(f"  (page state unavailable: {exc}; its log as last read)")
        lines.extend(f"  {json.dumps(entry, ensure_ascii=False)}" for entry in log)
        notes = self.page.notes() if self.page is not None else self._notes
        if notes:
            lines.append("--- engine notes:")
            lines.extend(f"  {line}" for line in notes[-notes_tail:])
        if self.record is not None:
            lines.append(f"--- {self.record.summary()}")
        return "\n".join(lines)

    def evaluate(self, expression: str) -> Any:
        assert self.page is not None, "the page is closed"
        return self.page.evaluate(expression)

    def log(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self.evaluate("window.LOG || []")
        self._last_log = log
        return log

    def close(self) -> None:
        """Close the window, as a user closing it would (the client sends no goodbye). Idempotent."""
        if self.page is None:
            return
        with contextlib.suppress(Exception):
            self.log()
        self._notes = self.page.notes()
        page, self.page = self.page, None
        with contextlib.suppress(Exception):
            page.close()


class EchoPage(LoggedPage):
    """Drives one page.html window in any engine (tests/engines.py); explains failures with its logs."""

    def __init__(self, engine: Engine, server: AppServer, transport: str, record: ServerRecord | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.server = server
        self.transport = transport
        self.record = record
        self.page = None

    # -- diagnostics ----------------------------------------------------------------------

    def heading(self) -> str:
        return f"page ({self.engine.version}, {self.transport})"

    # -- page state -----------------------------------------------------------------------

    def open(self) -> EchoPage:
        """Load page.html for this transport, with its shim when it needs one."""
        params = {"transport": self.transport, "port": self.server.port}
        if self.transport in SHIMMED_TRANSPORTS:
            params["shim"] = self.transport
        self.page = self.engine.open(f"{self.server.url}/page.html?{urlencode(params)}")
        return self

    def events(self) -> list[str]:
        return [entry["event"] for entry in self.log()]

    def messages(self) -> list[Any]:
        return [entry["value"] for entry in self.log() if entry["event"] == "message"]

    def wait_for(self, expression: str, timeout: float = 10.0, what: str = "") -> Any:
        """Wait until the JS ``expression`` is truthy in the page, or fail with the logs."""
        assert self.page is not None, "the page is closed"
        return wait_until(self.page, expression, timeout=timeout, what=what, describe=self.describe)

    def wait_connected(self, timeout: float = 12.0) -> dict[str, Any]:
        """Wait for the client's connect event (failing early on connect_failed/disconnect)."""
        self.wait_for(
            "(window.LOG || []).some(e => ['connect', 'connect_failed', 'disconnect'].includes(e.event))",
            timeout=timeout,
            what=f"the {self.transport} connect event",
        )
        first = self.log()[0]
        assert first["event"] == "connect", f"first page event is not connect\n{self.describe()}"
        return first

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until at least ``count`` messages arrived and return all messages so far."""
        self.wait_for(
            f"(window.LOG || []).filter(e => e.event === 'message').length >= {count}",
            timeout=timeout,
            what=f"{count} message(s)",
        )
        return self.messages()

    def send_all(self, messages: list[Any]) -> None:
        self.evaluate(f"window.sendAll({javascript(messages)})")

    def frames_typeof(self, name: str) -> list[tuple[str, str]]:
        """``typeof window[name]`` in the page and in each of its frames, nested ones included, as (url, type).

        htmlfile runs the scripts it receives inside an iframe of a hidden iframe, and the jsonp
        form posts into an iframe: a test of what ran must look at every window, not the top one.
        """
        found = self.evaluate(f"window.framesTypeof({javascript(name)})")
        return [(url.replace(self.server.url, "") or "(top)", kind) for url, kind in found]

    def transport_type(self) -> str:
        return self.evaluate("window.socket.transport && window.socket.transport.type")  # type: ignore[no-any-return]

    def connected(self) -> bool:
        return bool(self.evaluate("window.socket.connected"))

    def heartbeats(self) -> int:
        """``~h~`` heartbeats the client received (and echoed)."""
        return int(self.evaluate("window.HEARTBEATS"))
