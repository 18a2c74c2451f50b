"""Code written for the 2010 tornad_io release runs unchanged: chatroom_2010.py, run as a program.

The program blocks in ``SocketIOServer(application)`` on port 8888 exactly as in 2010, with the
Flash policy server on 8043 and a policy file that does not exist here. Its page loads jQuery and
the Socket.IO client from their 2010 CDN addresses; the browser context serves both from
node_modules instead (there is no network), and the page itself is never edited: one tab uses
the transport the client picks by itself in Chromium (websocket), the other is pinned to
xhr-polling with the client's own remember-transport cookie.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.resources
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, WebSocket
from playwright.sync_api import Error as PlaywrightError

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PROGRAM = HERE / "chatroom_2010.py"
CLIENT_JS = REPO_ROOT / "node_modules" / "socket.io" / "support" / "socket.io-client" / "socket.io.js"
JQUERY_JS = REPO_ROOT / "node_modules" / "jquery" / "dist" / "jquery.min.js"

JQUERY_CDN = "http://ajax.googleapis.com/ajax/libs/jquery/1.4.2/jquery.min.js"
CLIENT_CDN = "http://cdn.socket.io/stable/socket.io.js"
CDN_FILES = {JQUERY_CDN: JQUERY_JS, CLIENT_CDN: CLIENT_JS}

HTTP_PORT = 8888
POLICY_PORT = 8043
POLICY_FILE_2010 = "/etc/lighttpd/flashpolicy.xml"
PAGE_URL = f"http://localhost:{HTTP_PORT}/"

WELCOME = "Welcome to the room! Say something."
LEFT = "A user has left the room."


# -- the program ------------------------------------------------------------------------------


def port_taken(port: int) -> str | None:
    """Why ``port`` cannot be listened on by the program, or None when it is free."""
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this machine
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Tornado does
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"port {port} is already in use (cannot bind it on {address})"
                raise
    return None


class Program:
    """A 2010-style program running as ``python <program>`` in this folder, its output in files."""

    def __init__(self, workdir: Path, program: Path = PROGRAM) -> None:
        self.name = program.name
        self.stdout_path = workdir / f"{program.stem}.stdout"
        self.stderr_path = workdir / f"{program.stem}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # A test runner started in the background may ignore SIGINT, and a child keeps that
        # disposition: then Python would never raise KeyboardInterrupt in it. Let it have SIGINT.
        inherited = signal.getsignal(signal.SIGINT)
        if inherited == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
                self.process = subprocess.Popen(
                    [sys.executable, program.name], cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
                )
        finally:
            if inherited == signal.SIG_IGN:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    def output(self) -> str:
        out = self.stdout_path.read_text(encoding="utf-8", errors="replace")
        err = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.name} stdout:\n{out}--- {self.name} stderr:\n{err}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_listening(self, port: int, timeout: float = 20.0) -> None:
        """Wait until ``port`` on 127.0.0.1 accepts connections (polling, bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"{self.name} exited with {code} before listening on {port}\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{self.name} did not listen on {port} within {timeout} s\n{self.output()}")
                time.sleep(0.05)  # wait-ok: polling a port of another process, bounded above

    def interrupt(self, timeout: float = 10.0) -> int | None:
        """Send SIGINT (Ctrl-C) and wait for the program to exit; its exit code, or None if it did not."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def chatroom_2010(tmp_path: Path) -> Iterator[Program]:
    """chatroom_2010.py started as a program and listening on 8888 (HTTP) and 8043 (Flash policy)."""
    for path, how in ((CLIENT_JS, "`make setup` (npm install)"), (JQUERY_JS, "`npm install` (jquery)")):
        if not path.is_file():
            pytest.fail(f"{path} is missing: run {how} at the top of the repository.", pytrace=False)
    for port in (HTTP_PORT, POLICY_PORT):
        problem = port_taken(port)
        if problem:
            pytest.fail(
                f"{problem}: chatroom_2010.py listens on port {port} exactly as the 2010 program did, "
                "so this test needs it free. Stop whatever listens there (e.g. `make chatroom`, or "
                f"`ss -ltnp 'sport = :{port}'` to find it) and run the test again.",
                pytrace=False,
            )
    program = Program(tmp_path)
    try:
        program.wait_listening(HTTP_PORT)
        program.wait_listening(POLICY_PORT)
        yield program
    finally:
        program.kill()


def flash_policy_request(port: int) -> bytes:
    """What the policy server answers to Flash Player's request, up to its closing the connection."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"<policy-file-request/>\x00")
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


# -- the pages --------------------------------------------------------------------------------


class ChatTab:
    """One browser context with one chat page; the two CDN scripts are served from node_modules."""

    def __init__(self, browser: Browser, name: str, remembered_transport: str | None = None) -> None:
        self.name = name
        self.context: BrowserContext = browser.new_context()
        self.notes: list[str] = []
        self.requests: list[str] = []
        self.websockets: list[str] = []
        self._t0 = time.monotonic()
        self.context.route(JQUERY_CDN, self._serve_cdn)
        self.context.route(CLIENT_CDN, self._serve_cdn)
        if remembered_transport is not None:
            # The cookie the 0.6 client writes after a successful connection (rememberTransport is
            # on by default); when present, the client uses that transport and no other.
            self.context.add_cookies([{"name": "socketio", "value": remembered_transport, "url": PAGE_URL}])
        self.page: Page = self.context.new_page()
        self.page.on("request", self._on_request)
        self.page.on("requestfailed", lambda r: self._note(f"FAILED {r.method} {r.url}: {r.failure}"))
        self.page.on("websocket", self._on_websocket)
        self.page.on("console", lambda m: self._note(f"console.{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self._note(f"page error: {e}"))
        self._lines: list[str] = []

    def _note(self, line: str) -> None:
        self.notes.append(f"{time.monotonic() - self._t0:7.2f}s {line}")

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)
        self._note(f"{request.method} {request.url}")

    def _on_websocket(self, ws: WebSocket) -> None:
        self.websockets.append(ws.url)
        self._note(f"WEBSOCKET {ws.url}")

    def _serve_cdn(self, route: Route) -> None:
        path = CDN_FILES[route.request.url]
        self._note(f"  served {route.request.url} from {path.relative_to(REPO_ROOT)}")
        route.fulfill(
            status=200,
            path=path,
            headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-store"},
        )

    def open(self) -> ChatTab:
        self.page.goto(PAGE_URL, wait_until="load")
        return self

    def lines(self) -> list[str]:
        if not self.page.is_closed():
            try:
                self._lines = self.page.evaluate(
                    "() => Array.from(document.querySelectorAll('#chat p'), line => line.textContent)"
                )
            except PlaywrightError as exc:
                self._note(f"(cannot read the chat: {exc})")
        return self._lines

    def describe(self) -> str:
        lines = [f"--- {self.name} tab chat:"]
        lines.extend(f"  {line!r}" for line in self.lines())
        lines.append(f"--- {self.name} tab log:")
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)

    def wait_for_line(self, text: str, program: Program, timeout: float = 10.0) -> None:
        try:
            self.page.wait_for_function(
                "text => Array.from(document.querySelectorAll('#chat p'), line => line.textContent).includes(text)",
                arg=text,
                timeout=timeout * 1000,
            )
        except PlaywrightError as exc:
            raise AssertionError(
                f"the {self.name} tab never showed {text!r}: {exc}\n{self.describe()}\n{program.output()}"
            ) from None

    def say(self, text: str) -> None:
        """Type into the page's box and press its button, as a person would."""
        self.page.fill("#text", text)
        self.page.click("#say")

    def transport(self) -> str:
        return self.page.evaluate("() => s.transport && s.transport.type")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.lines()
        self.context.close()


# -- the test ---------------------------------------------------------------------------------


def test_the_2010_chatroom_runs_unchanged(chatroom_2010: Program, browser: Browser) -> None:
    program = chatroom_2010

    # The 2010 policy file path does not exist here: a warning names it and the packaged policy is
    # served on the 2010 port instead.
    answer = flash_policy_request(POLICY_PORT)
    assert answer.endswith(b"\x00"), answer
    if Path(POLICY_FILE_2010).is_file():
        expected = Path(POLICY_FILE_2010).read_text(encoding="utf-8")
    else:
        expected = importlib.resources.files("tornad_io").joinpath("flashpolicy.xml").read_text(encoding="utf-8")
        warnings = [line for line in program.stderr().splitlines() if POLICY_FILE_2010 in line]
        assert warnings, f"no warning names {POLICY_FILE_2010}\n{program.output()}"
    assert answer[:-1].decode("utf-8") == expected.rstrip("\x00"), answer

    tabs: list[ChatTab] = []
    try:
        first = ChatTab(browser, "websocket")
        tabs.append(first)
        first.open()
        first.wait_for_line(WELCOME, program)
        second = ChatTab(browser, "xhr-polling", remembered_transport="xhr-polling")
        tabs.append(second)
        second.open()
        second.wait_for_line(WELCOME, program)

        # Nothing in the page chose these: the client picked websocket, the cookie pinned xhr-polling.
        assert first.transport() == "websocket", first.describe()
        assert first.websockets == [f"ws://localhost:{HTTP_PORT}/socket.io/websocket"], first.describe()
        assert second.transport() == "xhr-polling", second.describe()
        assert second.websockets == [], second.describe()
        assert any("/socket.io/xhr-polling/" in url for url in second.requests), second.describe()
        for tab in tabs:
            assert tab.lines()[0] == WELCOME, tab.describe()
            assert tab.page.text_content("#status") == "connected", tab.describe()
            # The CDN scripts came from node_modules, and nothing else left localhost.
            assert {urlsplit(url).hostname for url in tab.requests} <= {
                "localhost",
                urlsplit(JQUERY_CDN).hostname,
                urlsplit(CLIENT_CDN).hostname,
            }, tab.describe()

        from_ws = "hello from the websocket tab é中😀"
        first.say(from_ws)
        for tab in tabs:
            tab.wait_for_line(from_ws, program)
        from_polling = "and hello back from xhr-polling"
        second.say(from_polling)
        for tab in tabs:
            tab.wait_for_line(from_polling, program)
        for tab in tabs:
            assert tab.lines() == [WELCOME, from_ws, from_polling], tab.describe()

        # Closing the websocket tab ends its session at once; the other tab hears about it.
        first.close()
        second.wait_for_line(LEFT, program)
        assert LEFT not in second.lines()[:-1], second.describe()
    finally:
        for tab in tabs:
            with contextlib.suppress(PlaywrightError):
                tab.context.close()

    # Ctrl-C: the blocking SocketIOServer(application) returns and the program ends cleanly.
    code = program.interrupt()
    assert code == 0, f"chatroom_2010.py exit code after SIGINT: {code}\n{program.output()}"
    assert "Traceback" not in program.stderr(), program.output()


def test_the_2010_starting_manually_recipe_runs_verbatim(tmp_path: Path) -> None:
    """FlashPolicyServer(port=8043, policy_file=...) binds by itself; HTTPServer + IOLoop serve the app."""
    for port in (HTTP_PORT, POLICY_PORT):
        problem = port_taken(port)
        if problem:
            pytest.fail(f"{problem}: the 2010 recipe listens on it; free it and run again.", pytrace=False)
    program = Program(tmp_path, HERE / "start_manually_2010.py")
    try:
        program.wait_listening(HTTP_PORT)
        program.wait_listening(POLICY_PORT)
        assert flash_policy_request(POLICY_PORT).endswith(b"</cross-domain-policy>\n\x00")
        with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=5) as sock:
            sock.sendall(b"GET /socket.io/xhr-polling//1 HTTP/1.1\r\nHost: 127.0.0.1:8888\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b"~m~32~m~" in answer, answer
    finally:
        program.kill()
    assert POLICY_FILE_2010 in program.stderr() or Path(POLICY_FILE_2010).is_file()
