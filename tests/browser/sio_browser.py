"""Helpers for the browser end-to-end tests: an echo application and a driver for page.html.

Only the public tornad_io API is used: ``SocketIOHandler`` with its ``on_open`` / ``on_message`` /
``on_close`` hooks, ``send``, ``routes``, the documented application settings and
``tornad_io.testing.AppServer``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import tornado.web
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, WebSocket

from tests.helpers import StaticFile
from tornad_io import SocketIOHandler
from tornad_io.testing import AppServer

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PAGE_HTML = HERE / "page.html"
SHIMS_JS = HERE / "shims.js"
CLIENT_JS = REPO_ROOT / "node_modules" / "socket.io" / "support" / "socket.io-client" / "socket.io.js"

RESOURCE = "socket.io"
#: The transports the real client picks by itself in headless Chromium.
BROWSER_TRANSPORTS = ("websocket", "xhr-polling")
#: All six, in the client's order of preference.
ALL_TRANSPORTS = ("websocket", "flashsocket", "htmlfile", "xhr-multipart", "xhr-polling", "jsonp-polling")
#: Transports that need a page shim (shims.js) standing in for IE, Firefox 3 or Flash Player.
SHIMMED_TRANSPORTS = frozenset({"flashsocket", "htmlfile", "xhr-multipart"})

_HEARTBEAT_FRAME = re.compile(r"~m~\d+~m~~h~[0-9a-z]+$")


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


class _NoFavicon(tornado.web.RequestHandler):
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
            (
                r"/socket\.io\.js",
                StaticFile,
                {"body": client_js.read_bytes(), "content_type": "text/javascript"},
            ),
            (
                r"/shims\.js",
                StaticFile,
                {"body": SHIMS_JS.read_bytes(), "content_type": "text/javascript"},
            ),
            (
                r"/page\.html",
                StaticFile,
                {"body": PAGE_HTML.read_bytes(), "content_type": "text/html; charset=utf-8"},
            ),
            (r"/favicon\.ico", _NoFavicon),
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


class EchoPage:
    """Drives one page.html tab and keeps a network log to explain failures."""

    def __init__(self, page: Page, server: AppServer, transport: str, record: ServerRecord | None = None) -> None:
        self.page = page
        self.server = server
        self.transport = transport
        self.record = record
        self.network: list[str] = []
        self._last_log: list[dict[str, Any]] = []
        #: ``~h~`` heartbeat frames the page received over its WebSocket (the client echoes each one)
        self.heartbeats_received = 0
        self._t0 = time.monotonic()
        page.on("request", lambda r: self._note(f"{r.method} {self._short(r.url)}"))
        page.on("response", lambda r: self._note(f"  <- {r.status} {r.request.method} {self._short(r.url)}"))
        page.on("requestfailed", lambda r: self._note(f"  FAILED {r.method} {self._short(r.url)}: {r.failure}"))
        page.on("websocket", self._watch_websocket)
        page.on("console", lambda m: self._note(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self._note(f"page error: {e}"))

    # -- diagnostics ----------------------------------------------------------------------

    def _short(self, url: str) -> str:
        return url.replace(self.server.url, "")

    def _note(self, line: str) -> None:
        self.network.append(f"{time.monotonic() - self._t0:7.2f}s {line}")

    def _watch_websocket(self, ws: WebSocket) -> None:
        self._note(f"WEBSOCKET open {self._short(ws.url)}")
        ws.on("framesent", lambda payload: self._note(f"  ws sent {str(payload)[:120]!r}"))
        ws.on("framereceived", self._on_ws_frame)
        ws.on("socketerror", lambda error: self._note(f"  ws error {error}"))
        ws.on("close", lambda _ws: self._note("  ws closed"))

    def _on_ws_frame(self, payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        self._note(f"  ws received {text[:120]!r}")
        if _HEARTBEAT_FRAME.match(text):
            self.heartbeats_received += 1

    def describe(self) -> str:
        """The page's event log, the requests it made and what the server saw, for failure messages."""
        lines = [f"--- page ({self.transport}) LOG:"]
        if self.page.is_closed():
            log = self._last_log
            lines.append("  (page closed; its log as last read)")
        else:
            try:
                log = self.log()
            except PlaywrightError as exc:
                log = self._last_log
                lines.append(f"  (page state unavailable: {exc}; its log as last read)")
        lines.extend(f"  {json.dumps(entry, ensure_ascii=False)}" for entry in log)
        lines.append("--- network:")
        lines.extend(f"  {line}" for line in self.network)
        if self.record is not None:
            lines.append(f"--- {self.record.summary()}")
        return "\n".join(lines)

    # -- page state -----------------------------------------------------------------------

    def open(self) -> EchoPage:
        """Load page.html for this transport, with its shim when it needs one.

        htmlfile's never-ending iframe keeps the page from ever firing ``load``, so that page is
        only awaited until its DOM is ready (the client connects from the page's own script).
        """
        params = {"transport": self.transport, "port": self.server.port}
        if self.transport in SHIMMED_TRANSPORTS:
            params["shim"] = self.transport
        wait_until = "domcontentloaded" if self.transport == "htmlfile" else "load"
        self.page.goto(f"{self.server.url}/page.html?{urlencode(params)}", wait_until=wait_until)
        return self

    def log(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self.page.evaluate("() => window.LOG || []")
        self._last_log = log
        return log

    def close(self) -> None:
        """Close the tab, as a user closing it would (the client sends no goodbye)."""
        self.log()
        self.page.close()

    def events(self) -> list[str]:
        return [entry["event"] for entry in self.log()]

    def messages(self) -> list[Any]:
        return [entry["value"] for entry in self.log() if entry["event"] == "message"]

    def wait_for(self, expression: str, arg: Any = None, timeout: float = 10.0, what: str = "") -> None:
        """Wait until the JS function ``expression`` (given ``arg``) is truthy, or fail with the logs."""
        try:
            self.page.wait_for_function(expression, arg=arg, timeout=timeout * 1000)
        except PlaywrightError as exc:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what or expression}: {exc}\n{self.describe()}"
            ) from None

    def wait_connected(self, timeout: float = 12.0) -> dict[str, Any]:
        """Wait for the client's connect event (failing early on connect_failed/disconnect)."""
        self.wait_for(
            "() => (window.LOG || []).some(e => ['connect', 'connect_failed', 'disconnect'].includes(e.event))",
            timeout=timeout,
            what=f"the {self.transport} connect event",
        )
        log = self.log()
        first = log[0]
        assert first["event"] == "connect", f"first page event is not connect\n{self.describe()}"
        return first

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until at least ``count`` messages arrived and return all messages so far."""
        self.wait_for(
            "n => (window.LOG || []).filter(e => e.event === 'message').length >= n",
            arg=count,
            timeout=timeout,
            what=f"{count} message(s)",
        )
        return self.messages()

    def send_all(self, messages: list[Any]) -> None:
        self.page.evaluate("list => window.sendAll(list)", messages)

    def frames_typeof(self, name: str) -> list[tuple[str, str]]:
        """``typeof window[name]`` in the page and in each of its frames, nested ones included, as (url, type).

        The type is "detached" for a frame removed from the page while it was being asked.

        htmlfile runs the scripts it receives inside an iframe of a hidden iframe, and the jsonp
        form posts into an iframe: a test of what ran must look at every window, not the top one.
        """
        found = []
        for frame in self.page.frames:
            kind = ""
            for _attempt in range(3):
                try:
                    kind = frame.evaluate("name => typeof window[name]", name)
                    break
                except PlaywrightError as exc:
                    # The jsonp form's iframe is replaced after every post: a frame removed in the
                    # meantime holds nothing any more. One that was navigating is asked again.
                    kind = "detached" if frame.is_detached() else f"unavailable ({exc})"
                    if kind == "detached":
                        break
            found.append((self._short(frame.url) or "(top)", kind))
        return found

    def transport_type(self) -> str:
        return self.page.evaluate("() => window.socket.transport && window.socket.transport.type")  # type: ignore[no-any-return]

    def connected(self) -> bool:
        return bool(self.page.evaluate("() => window.socket.connected"))
