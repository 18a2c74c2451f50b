"""The three browser engines of the browser tests, behind one small interface.

=========  ==============================================  ===========================================
engine     browser (Debian package)                        driven through
=========  ==============================================  ===========================================
chromium   /usr/bin/chromium (``chromium``), headless      Playwright's sync API (``executable_path``)
firefox    /usr/bin/firefox-esr (``firefox-esr``),         WebDriver BiDi, spoken by Firefox itself:
           headless                                        a small client below over ``websocket-client``
webkit     WebKitGTK's MiniBrowser (``webkit2gtk-driver``  Selenium's WebKitGTK driver and
           brings it), on its own Xvfb (``xvfb``)          /usr/bin/WebKitWebDriver
=========  ==============================================  ===========================================

No browser is ever downloaded: Playwright's own builds (``playwright install``) and geckodriver are
never used. A test asks an :class:`Engine` to ``open(url)`` a :class:`Page` (a window of its own),
runs script in it with ``page.evaluate(js_expression)`` (the value comes back through
``JSON.stringify``, so it is plain JSON data in every engine) and closes it; the same test then runs
in every engine. ``open`` returns once the page's DOM is parsed in Chromium and Firefox, whose
``load`` a page on htmlfile (Chromium) or jsonp-polling (Firefox) keeps delaying with its
never-ending loads, and at ``load`` in WebKit (see ``WebKitEngine``); a test then waits on the
page's own state (:func:`wait_until`).

Every browser runs in a process group of its own (Xvfb too) that is killed when the engine closes,
whatever happened in the test. An engine that is not installed skips its tests, naming the Debian
package; with ``TORNAD_IO_REQUIRE_ENGINES=1`` (set by .ci/run) that is a failure instead.

Why Chromium goes through a module-scoped ``browser`` fixture (tests/conftest.py) and never a
session-scoped one: while Playwright's sync API is started it leaves its event loop marked as running
in the main thread, which breaks every later test that runs an asyncio or Tornado loop ("Cannot run
the event loop while another loop is running").
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

ENGINE_NAMES = ("chromium", "firefox", "webkit")

#: Set to 1 (as .ci/run does) to make a missing engine a failure instead of a skip.
REQUIRE_ENGINES_ENV = "TORNAD_IO_REQUIRE_ENGINES"

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
FIREFOX = Path("/usr/bin/firefox-esr")
WEBKIT_DRIVER = Path("/usr/bin/WebKitWebDriver")
MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
XVFB = Path("/usr/bin/Xvfb")

#: How long a browser (or Xvfb) may take to start on a busy 2-core machine.
START_TIMEOUT = 60.0
#: How long one command to a browser may take (a navigation, a script, opening a window).
COMMAND_TIMEOUT = 30.0


class EngineError(RuntimeError):
    """A browser did not start, or refused or failed a command."""


class Page(Protocol):
    """One page in its own window."""

    def evaluate(self, expression: str) -> Any:
        """Evaluate the JavaScript ``expression`` in the page; its value, through ``JSON.stringify``."""
        ...

    def notes(self) -> list[str]:
        """What the engine noticed about the page (console, script errors, requests), for failure messages."""
        ...

    def close(self) -> None:
        """Close the window, as a user closing it would (a page says no goodbye). Idempotent."""
        ...


class Engine(Protocol):
    """A running browser."""

    name: str
    #: e.g. "Chromium 156.0.8078.108", as the browser reports itself
    version: str

    def open(self, url: str) -> Page:
        """Open ``url`` in a new window; return once its scripts can run (see the module's docstring)."""
        ...

    def close(self) -> None:
        """Close every page and end the browser's processes. Idempotent."""
        ...


def javascript(value: Any) -> str:
    """``value`` as a JavaScript literal (JSON is one), to put data into an expression."""
    return json.dumps(value)


def wait_until(
    page: Page,
    expression: str,
    timeout: float = 10.0,
    what: str = "",
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll ``expression`` in ``page`` until its value is truthy and return it, or fail with ``describe()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            details = describe() if describe is not None else "\n".join(page.notes())
            raise AssertionError(f"timed out after {timeout} s waiting for {what or expression}\n{details}")
        time.sleep(0.05)  # wait-ok: polling page state


# -- which engines are installed ---------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    label: str
    #: (file the engine runs, Debian package that installs it)
    files: tuple[tuple[Path, str], ...]

    def missing_packages(self) -> list[str]:
        missing: list[str] = []
        for path, package in self.files:
            if not os.access(path, os.X_OK) and package not in missing:
                missing.append(package)
        return missing


REQUIREMENTS = {
    "chromium": Requirement("Chromium", ((CHROMIUM, "chromium"),)),
    "firefox": Requirement("Firefox", ((FIREFOX, "firefox-esr"),)),
    "webkit": Requirement(
        "WebKitGTK",
        ((WEBKIT_DRIVER, "webkit2gtk-driver"), (MINIBROWSER, "webkit2gtk-driver"), (XVFB, "xvfb")),
    ),
}


def require(name: str) -> None:
    """Skip (or, with TORNAD_IO_REQUIRE_ENGINES=1, fail) the current test when engine ``name`` is missing."""
    packages = REQUIREMENTS[name].missing_packages()
    if not packages:
        return
    listed = " ".join(packages)
    reason = (
        f"{REQUIREMENTS[name].label} tests need the Debian package(s) {listed}: "
        f"`make test` as root installs them, or `sudo apt-get install {listed}`"
    )
    if os.environ.get(REQUIRE_ENGINES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENGINES_ENV}=1: no engine may be skipped)", pytrace=False)
    pytest.skip(reason)


#: Engine name -> version, of every engine started in this run (for the end-of-run summary).
STARTED: dict[str, str] = {}


# -- processes -----------------------------------------------------------------------------------


class ProcessGroup:
    """A child process started as the leader of a new process group, ended with the whole group."""

    def __init__(self, args: list[str], **popen: Any) -> None:
        self.args = args
        self.process = subprocess.Popen(args, start_new_session=True, **popen)
        self.pid = self.process.pid

    def end(self, grace: float = 5.0) -> None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds, and SIGKILL whatever of it is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # Children of the leader (a browser's content processes) may outlive it: the group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace)


class _LineReader:
    """Reads a child's output in a thread (so that its pipe never fills), keeping the last lines."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.tail: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True, name="engine-output").start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.tail = [*self.tail[-30:], line.rstrip()]
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if not line:
                return None
            if match := pattern.search(line):
                return match
        return None


# -- Chromium: Playwright ------------------------------------------------------------------------


class ChromiumPage:
    def __init__(self, browser: Any, url: str) -> None:
        self._context = browser.new_context()
        self._page = self._context.new_page()
        self._t0 = time.monotonic()
        self._notes: list[str] = []
        page = self._page
        page.on("request", lambda r: self._note(f"{r.method} {r.url}"))
        page.on("response", lambda r: self._note(f"  <- {r.status} {r.request.method} {r.url}"))
        page.on("requestfailed", lambda r: self._note(f"  FAILED {r.method} {r.url}: {r.failure}"))
        page.on("websocket", lambda ws: self._note(f"WEBSOCKET {ws.url}"))
        page.on("console", lambda m: self._note(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self._note(f"page error: {e}"))
        self.playwright_page = page
        page.goto(url, wait_until="domcontentloaded", timeout=COMMAND_TIMEOUT * 1000)

    def _note(self, line: str) -> None:
        self._notes.append(f"{time.monotonic() - self._t0:7.2f}s {line}")

    def evaluate(self, expression: str) -> Any:
        text = self._page.evaluate(f"() => JSON.stringify(({expression}))")
        return None if text is None else json.loads(text)

    def notes(self) -> list[str]:
        return list(self._notes)

    def close(self) -> None:
        self._context.close()


class ChromiumEngine:
    name = "chromium"

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self._pages: list[ChromiumPage] = []
        self.version = f"Chromium {browser.version}"
        STARTED[self.name] = self.version

    def open(self, url: str) -> ChromiumPage:
        page = ChromiumPage(self._browser, url)
        self._pages.append(page)
        return page

    def close(self) -> None:
        # The browser itself belongs to the module's ``browser`` fixture.
        for page in self._pages:
            with contextlib.suppress(Exception):
                page.close()
        self._pages.clear()


@contextlib.contextmanager
def playwright_chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright's sync API: the ``browser`` fixture (one per test module)."""
    from playwright.sync_api import sync_playwright

    require("chromium")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# -- Firefox: WebDriver BiDi -----------------------------------------------------------------------


class _BiDi:
    """A minimal synchronous WebDriver BiDi client: one command at a time, events kept per page."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client

        self._timeout_error = websocket.WebSocketTimeoutException
        # Firefox's BiDi server refuses a handshake that carries an Origin header.
        self._ws = websocket.create_connection(url, suppress_origin=True, timeout=COMMAND_TIMEOUT)
        self._next_id = 0
        self.events: dict[str, list[str]] = {}

    def command(self, method: str, params: dict[str, Any], timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError(f"Firefox did not answer {method} within {timeout} s")
            self._ws.settimeout(remaining)
            try:
                message = json.loads(self._ws.recv())
            except self._timeout_error:
                continue
            if message.get("type") == "event":
                self._on_event(message)
            elif message.get("id") == ident:
                if message.get("type") == "error":
                    raise EngineError(f"Firefox refused {method}: {message.get('error')}: {message.get('message')}")
                result: dict[str, Any] = message["result"]
                return result

    def _on_event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "log.entryAdded":
            entry = message["params"]
            context = entry.get("source", {}).get("context", "")
            kind = "console" if entry.get("type") == "console" else "script error"
            self.events.setdefault(context, []).append(f"{kind} ({entry.get('level')}): {entry.get('text')}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()


class FirefoxPage:
    def __init__(self, bidi: _BiDi, url: str) -> None:
        self._bidi = bidi
        # A window, not a tab: a tab in the background would have its timers throttled.
        self.context: str = bidi.command("browsingContext.create", {"type": "window"})["context"]
        self.closed = False
        bidi.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "interactive"})

    def evaluate(self, expression: str) -> Any:
        answer = self._bidi.command(
            "script.evaluate",
            {
                "expression": f"JSON.stringify(({expression}))",
                "target": {"context": self.context},
                "awaitPromise": False,
            },
        )
        if answer["type"] == "exception":
            raise EngineError(f"script error in Firefox: {answer['exceptionDetails'].get('text')}\n  in: {expression}")
        result = answer["result"]
        return json.loads(result["value"]) if result["type"] == "string" else None

    def notes(self) -> list[str]:
        return list(self._bidi.events.get(self.context, []))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bidi.command("browsingContext.close", {"context": self.context, "promptUnload": False})


class FirefoxEngine:
    name = "firefox"

    def __init__(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="tornad-io-firefox-")
        self._bidi: _BiDi | None = None
        self._process = ProcessGroup(
            [
                str(FIREFOX),
                "--headless",
                "--no-remote",
                "--profile",
                self._profile,
                "--remote-debugging-port=0",
                "--remote-allow-hosts=127.0.0.1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
        )
        try:
            output = _LineReader(self._process.process.stderr)
            listening = output.wait_for(re.compile(r"WebDriver BiDi listening on (ws://\S+)"), START_TIMEOUT)
            if listening is None:
                raise EngineError("Firefox did not start its WebDriver BiDi server:\n" + "\n".join(output.tail))
            self._bidi = _BiDi(listening.group(1) + "/session")
            session = self._bidi.command("session.new", {"capabilities": {}}, timeout=START_TIMEOUT)
            self.version = f"Firefox {session['capabilities']['browserVersion']}"
            self._bidi.command("session.subscribe", {"events": ["log.entryAdded"]})
        except BaseException:
            self.close()
            raise
        STARTED[self.name] = self.version

    def open(self, url: str) -> FirefoxPage:
        assert self._bidi is not None
        return FirefoxPage(self._bidi, url)

    def close(self) -> None:
        try:
            if self._bidi is not None:
                with contextlib.suppress(Exception):
                    self._bidi.command("browser.close", {}, timeout=5)
                self._bidi.close()
                self._bidi = None
        finally:
            self._process.end()
            shutil.rmtree(self._profile, ignore_errors=True)


# -- WebKitGTK: Selenium, WebKitWebDriver, MiniBrowser on Xvfb ---------------------------------------


class Xvfb:
    """A virtual X display on a free display number (``Xvfb -displayfd``), for MiniBrowser."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        try:
            self._process = ProcessGroup(
                [str(XVFB), "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(write_end)
        try:
            number = b""
            deadline = time.monotonic() + START_TIMEOUT
            while not number.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                    raise EngineError("Xvfb did not report its display number")
                chunk = os.read(read_end, 16)
                if not chunk:
                    raise EngineError(f"Xvfb exited (status {self._process.process.poll()})")
                number += chunk
            self.display = f":{number.decode().strip()}"
        except BaseException:
            self._process.end()
            raise
        finally:
            os.close(read_end)

    def end(self) -> None:
        self._process.end()


class WebKitPage:
    def __init__(self, engine: WebKitEngine, url: str) -> None:
        self._engine = engine
        driver = engine.driver
        # A window, not a tab: a background tab is a hidden page, whose timers WebKit may throttle.
        driver.switch_to.new_window("window")
        self.handle: str = driver.current_window_handle
        self.closed = False
        driver.get(url)  # page load strategy "normal": returns at load

    def evaluate(self, expression: str) -> Any:
        driver = self._engine.focus(self.handle)
        text = driver.execute_script(f"return JSON.stringify(({expression}));")
        return None if text is None else json.loads(text)

    def notes(self) -> list[str]:
        return []  # WebDriver classic has no console log for WebKitGTK

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._engine.focus(self.handle).close()
            self._engine.focus(self._engine.home)


class WebKitEngine:
    name = "webkit"

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        self._xvfb: Xvfb | None = Xvfb()
        self.driver: Any = None
        try:
            options = Options()
            options.binary_location = str(MINIBROWSER)
            options.add_argument("--automation")
            # "normal" (until load), not "eager": WebKitWebDriver 2.50 now and then never answers the
            # first script sent after an eager navigation returned (a 30 s timeout, about 1 page in 50).
            options.page_load_strategy = "normal"
            service = Service(
                executable_path=str(WEBKIT_DRIVER),
                env={**os.environ, "DISPLAY": self._xvfb.display},
                log_output=subprocess.DEVNULL,
                # WebKitWebDriver, MiniBrowser and WebKit's processes share a new process group.
                popen_kw={"start_new_session": True},
            )
            self._service = service
            with warnings.catch_warnings():
                # Selenium's own WebKitGTK driver still uses its deprecated RemoteConnection argument.
                warnings.filterwarnings("ignore", "setting remote_server_addr", DeprecationWarning)
                self.driver = webdriver.WebKitGTK(options=options, service=service)
            self.driver.set_page_load_timeout(COMMAND_TIMEOUT)
            self.driver.set_script_timeout(COMMAND_TIMEOUT)
            self.home: str = self.driver.current_window_handle
            self._current = self.home
            self.version = f"WebKitGTK {self.driver.capabilities['browserVersion']}"
        except BaseException:
            self.close()
            raise
        STARTED[self.name] = self.version

    def focus(self, handle: str) -> Any:
        """The driver, its commands going to window ``handle``."""
        if self._current != handle:
            self.driver.switch_to.window(handle)
            self._current = handle
        return self.driver

    def open(self, url: str) -> WebKitPage:
        self._current = ""  # new_window switches to the new window
        page = WebKitPage(self, url)
        self._current = page.handle
        return page

    def close(self) -> None:
        service = getattr(self, "_service", None)
        process = getattr(service, "process", None)
        try:
            if self.driver is not None:
                with contextlib.suppress(Exception):
                    self.driver.quit()
                self.driver = None
        finally:
            if process is not None:
                # The driver's group: MiniBrowser and WebKit's processes may outlive WebKitWebDriver.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    process.wait(5)
            if self._xvfb is not None:
                self._xvfb.end()
                self._xvfb = None


@contextlib.contextmanager
def running(name: str, chromium: Callable[[], Any] | None = None) -> Iterator[Engine]:
    """Start engine ``name`` (skipping the test when it is missing); it ends when the block does.

    ``chromium`` gives the Playwright browser to open Chromium pages in (the module's ``browser``).
    """
    require(name)
    engine: Engine
    if name == "chromium":
        assert chromium is not None, "Chromium pages open in the module's Playwright browser"
        engine = ChromiumEngine(chromium())
    elif name == "firefox":
        engine = FirefoxEngine()
    elif name == "webkit":
        engine = WebKitEngine()
    else:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    try:
        yield engine
    finally:
        engine.close()
