"""SocketIOServer: listens where the settings say, stops cleanly; its blocking form runs the program's IOLoop.

Inside a running IOLoop it starts and returns; outside one (tests/compat programs, run as
subprocesses) it blocks running ``IOLoop.current()`` until Ctrl-C or ``stop()``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.tcpclient
import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io.server
from tests.helpers import echo_handler, messages
from tornad_io import SocketIOServer
from tornad_io.registry import registry_for
from tornad_io.testing import SocketIOClient


class TestSocketIOServer(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_listens_on_socket_io_port_and_stops(self) -> None:
        with socket.socket() as probe:  # a free port to put in the settings
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app = tornado.web.Application([echo_handler().routes("socket.io")], socket_io_port=port, flash_policy_port=0)
        server = SocketIOServer(app, address="127.0.0.1")
        assert server.port == port
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(f"http://127.0.0.1:{port}/socket.io/xhr-polling//1")
        assert messages(response.body)[1] == "welcome"
        server.stop()
        with pytest.raises(ConnectionRefusedError):  # the listener is gone
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    @tornado.testing.gen_test
    async def test_port_argument_overrides_the_setting(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], socket_io_port=1, flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.port not in (0, 1)
        server.stop()

    @tornado.testing.gen_test
    async def test_flashsocket_brings_the_policy_server_and_stop_closes_it(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.flash_policy_server is not None
        policy_port = server.flash_policy_server.port
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", policy_port)
        await stream.write(b"<policy-file-request/>\0")
        answer = await stream.read_until_close()
        assert answer.endswith(b"</cross-domain-policy>\n\0")
        server.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", policy_port), timeout=5).close()

    @tornado.testing.gen_test
    async def test_no_policy_server_without_flashsocket(self) -> None:
        app = tornado.web.Application(
            [echo_handler().routes("socket.io")], enabled_protocols=["websocket", "xhr-polling"]
        )
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.flash_policy_server is None
        server.stop()

    @tornado.testing.gen_test
    async def test_a_refused_policy_port_is_a_hint_not_a_crash(self) -> None:
        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")  # what binding 843 without root raises

        app = tornado.web.Application([echo_handler().routes("socket.io")])
        original = tornad_io.server.FlashPolicyServer
        tornad_io.server.FlashPolicyServer = refuse  # type: ignore[assignment,misc]
        try:
            with tornado.testing.ExpectLog("tornad_io.server", ".*port 843 .*map port 843"):
                server = SocketIOServer(app, port=0, address="127.0.0.1")
        finally:
            tornad_io.server.FlashPolicyServer = original  # type: ignore[misc]
        assert server.flash_policy_server is None
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{server.port}/socket.io/xhr-polling//1"
        )
        assert response.code == 200
        server.stop()

    @tornado.testing.gen_test
    async def test_stop_ends_open_connections_with_on_close(self) -> None:
        handler = echo_handler()
        app = tornado.web.Application([handler.routes("socket.io")], flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/websocket")
        await ws.read_message()
        server.stop()
        await handler.recorder.wait("close")
        assert await ws.read_message() is None
        assert len(registry_for(app)) == 0

    @tornado.testing.gen_test
    async def test_tornado_timeouts_have_defaults_unless_passed(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.http_server.conn_params.header_timeout == tornad_io.server.IDLE_CONNECTION_TIMEOUT == 20.0
        assert server.http_server.conn_params.body_timeout == 5.0 + tornad_io.server.BODY_TIMEOUT_MARGIN
        server.stop()
        app = tornado.web.Application(
            [echo_handler().routes("socket.io")], flash_policy_port=0, socket_io_body_timeout=2.0
        )
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.http_server.conn_params.body_timeout == 2.0 + tornad_io.server.BODY_TIMEOUT_MARGIN
        server.stop()
        server = SocketIOServer(app, port=0, address="127.0.0.1", idle_connection_timeout=5.0, body_timeout=None)
        assert server.http_server.conn_params.header_timeout == 5.0
        assert server.http_server.conn_params.body_timeout is None  # the caller's choice, even "none"
        server.stop()

    @tornado.testing.gen_test(timeout=30)
    async def test_the_idle_timeout_closes_a_half_sent_head_but_no_held_poll_or_websocket(self) -> None:
        app = tornado.web.Application(
            [echo_handler().routes("socket.io")], flash_policy_port=0, socket_io_poll_timeout=1.0
        )
        server = SocketIOServer(app, port=0, address="127.0.0.1", idle_connection_timeout=0.3)
        ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/websocket")
        assert messages(await ws.read_message())[1] == "welcome"  # type: ignore[arg-type]
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", server.port)
        await stream.write(b"POST /socket.io/xhr-polling/0000aaaa/send HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert await stream.read_until_close() == b""  # closed, unanswered, well before the test's timeout
        client = tornado.httpclient.AsyncHTTPClient()
        handshake = await client.fetch(f"http://127.0.0.1:{server.port}/socket.io/xhr-polling//1")
        sid = messages(handshake.body)[0]
        held = await client.fetch(f"http://127.0.0.1:{server.port}/socket.io/xhr-polling/{sid}/2")
        assert held.code == 200 and held.body == b""  # held for the poll timeout, longer than the idle one
        await ws.write_message("~m~5~m~still")
        assert messages(await ws.read_message()) == ["still"]  # type: ignore[arg-type]
        ws.close()
        server.stop()

    @tornado.testing.gen_test
    async def test_a_second_process_on_the_policy_port_is_a_warning(self) -> None:
        first = SocketIOServer(
            tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0),
            port=0, address="127.0.0.1",
        )
        assert first.flash_policy_server is not None
        taken = first.flash_policy_server.port
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=taken)
        with tornado.testing.ExpectLog("tornad_io.server", f".*port {taken} is taken"):
            second = SocketIOServer(app, port=0, address="127.0.0.1")
        assert second.flash_policy_server is None
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{second.port}/socket.io/xhr-polling//1"
        )
        assert response.code == 200
        first.stop()
        second.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
class TestTLS(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_ssl_options_reach_the_http_server(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            cert, key = self_signed_certificate(Path(directory))
            app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
            server = SocketIOServer(
                app, port=0, address="127.0.0.1", ssl_options={"certfile": str(cert), "keyfile": str(key)}
            )
            client = tornado.httpclient.AsyncHTTPClient()
            response = await client.fetch(
                f"https://127.0.0.1:{server.port}/socket.io/xhr-polling//1", validate_cert=False
            )
            assert messages(response.body)[1] == "welcome"
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            ws = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(f"wss://127.0.0.1:{server.port}/socket.io/websocket",
                                               ssl_options=context)
            )
            assert messages(await ws.read_message())[1] == "welcome"  # type: ignore[arg-type]
            ws.close()
            server.stop()


# -- the blocking form, run as programs (tests/compat) -----------------------------------------

COMPAT = Path(__file__).resolve().parent / "compat"
REPO_ROOT = COMPAT.parents[1]
LISTENING = r"Socket\.IO server listening on 127\.0\.0\.1:(\d+)"


class Program:
    """``python tests/compat/<name> [args]`` run from the repository, its output in files."""

    def __init__(self, workdir: Path, name: str, *args: str) -> None:
        self.name = name
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        # A test runner started in the background may ignore SIGINT, and a child keeps that
        # disposition: then Python would never raise KeyboardInterrupt in it. Let it have SIGINT.
        inherited = signal.getsignal(signal.SIGINT)
        if inherited == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
                self.process = subprocess.Popen(
                    [sys.executable, str(COMPAT / name), *args],
                    cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err,
                )
        finally:
            if inherited == signal.SIG_IGN:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        return f"--- {self.name} stdout:\n{self.stdout()}--- {self.name} stderr:\n{self.stderr()}"

    def wait_for(self, pattern: str, *, stderr: bool = False, timeout: float = 20.0) -> re.Match[str]:
        """The first match of ``pattern`` in the program's stdout (or stderr), polled for, bounded."""
        read = self.stderr if stderr else self.stdout
        deadline = time.monotonic() + timeout
        while True:
            exited = self.process.poll()
            match = re.search(pattern, read())
            if match:
                return match
            if exited is not None:
                pytest.fail(f"{self.name} exited with {exited} before printing {pattern!r}\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not print {pattern!r} within {timeout} s\n{self.output()}")
            time.sleep(0.05)  # wait-ok: polling another process's output, bounded above

    def socket_io_url(self) -> str:
        return f"http://127.0.0.1:{self.wait_for(LISTENING, stderr=True).group(1)}"

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def wait(self, timeout: float = 15.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still runs after {timeout} s\n{self.output()}")

    def interrupt(self, timeout: float = 15.0) -> int:
        """Ctrl-C: SIGINT, then the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdin is not None:
            self.process.stdin.close()


@pytest.fixture
def run_program(tmp_path: Path) -> Iterator[Callable[..., Program]]:
    """Start tests/compat programs; each is killed at the end of the test whatever happened."""
    started: list[Program] = []

    def run(name: str, *args: str) -> Program:
        started.append(Program(tmp_path, name, *args))
        return started[-1]

    try:
        yield run
    finally:
        for program in started:
            program.kill()


def echo_client(url: str, text: str, expected: str | None = None) -> SocketIOClient:
    """A websocket client of ``url`` that has seen ``text`` echoed (as ``expected``, if given)."""
    client = SocketIOClient(url, transport="websocket")
    client.connect()
    client.send(text)
    assert client.receive(timeout=10) == (text if expected is None else expected)
    return client


def printed_in_order(program: Program, *lines: str) -> bool:
    """Whether the program printed ``lines`` in this order (other lines, such as ticks, between them)."""
    printed = iter(program.stdout().splitlines())
    return all(line in printed for line in lines)


def assert_clean_exit(program: Program, code: int) -> None:
    assert code == 0, f"{program.name} exit status {code}\n{program.output()}"
    assert "Traceback" not in program.stderr(), program.output()
    assert program.stdout().rstrip().endswith("SocketIOServer returned"), program.output()


def test_the_blocking_form_runs_what_the_program_set_up_on_its_ioloop(run_program: Callable[..., Program]) -> None:
    """best_way_2010.py: a second application, a PeriodicCallback and an add_callback all run."""
    program = run_program("best_way_2010.py")
    url = program.socket_io_url()
    other_port = int(program.wait_for(r"other application on port (\d+)").group(1))
    with urllib.request.urlopen(f"http://127.0.0.1:{other_port}/", timeout=10) as response:
        assert response.read() == b"hello from the other application"
    program.wait_for("add_callback fired")
    program.wait_for("tick 3")
    client = echo_client(url, "hello é中😀")
    client.close()
    assert_clean_exit(program, program.interrupt())


def test_the_blocking_form_next_to_the_starting_manually_recipe(run_program: Callable[..., Program]) -> None:
    """start_manually_and_block.py: the recipe's servers, and SocketIOServer's, on one IOLoop.

    The recipe alone, verbatim, is tests/compat/test_chatroom_2010.py's
    test_the_2010_starting_manually_recipe_runs_verbatim.
    """
    program = run_program("start_manually_and_block.py")
    url = program.socket_io_url()
    policy_port = int(program.wait_for(r"manual policy server on port (\d+)").group(1))
    manual_port = int(program.wait_for(r"manual application on port (\d+)").group(1))
    with socket.create_connection(("127.0.0.1", policy_port), timeout=10) as sock:
        sock.sendall(b"<policy-file-request/>\0")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.endswith(b"</cross-domain-policy>\n\0"), answer
    manual = echo_client(f"http://127.0.0.1:{manual_port}", "hi", "[echo] hi")
    chat = echo_client(url, "hi", "[chat] hi")
    assert_clean_exit(program, program.interrupt())
    for client in (manual, chat):  # the manual server's connection too: the process is gone
        assert client.wait_closed(10)
        client.close()


def test_an_exception_in_a_hook_is_logged_without_a_bogus_context(run_program: Callable[..., Program]) -> None:
    program = run_program("best_way_2010.py")
    client = echo_client(program.socket_io_url(), "before")
    client.send("boom")
    program.wait_for(r"ValueError: boom from on_message", stderr=True)
    code = program.interrupt()
    assert code == 0, program.output()
    stderr = program.stderr()
    assert "Traceback (most recent call last)" in stderr and "in on_message" in stderr, program.output()
    assert "During handling of the above exception" not in stderr, program.output()
    assert "no running event loop" not in stderr, program.output()
    assert "RuntimeError" not in stderr, program.output()
    assert stderr.count("Traceback") == 1, program.output()  # the hook's, nothing else
    client.close()


def test_ctrl_c_closes_every_connection_and_returns(run_program: Callable[..., Program]) -> None:
    program = run_program("best_way_2010.py")
    client = echo_client(program.socket_io_url(), "hello")
    code = program.interrupt()
    assert_clean_exit(program, code)
    assert "Socket.IO server interrupted; shutting down" in program.stderr(), program.output()
    # stop() ran: the connection got its on_close before the blocking call returned.
    assert printed_in_order(program, "on_close ran", "SocketIOServer returned"), program.output()
    assert client.wait_closed(10)
    client.close()


def test_ctrl_c_while_a_handler_runs_lets_it_finish_then_shuts_down(run_program: Callable[..., Program]) -> None:
    """SIGINT in the middle of on_message: no KeyboardInterrupt raised inside it (or, later, from its task)."""
    program = run_program("best_way_2010.py")
    client = echo_client(program.socket_io_url(), "hello")
    client.send("busy")
    program.wait_for("busy")
    code = program.interrupt()
    assert_clean_exit(program, code)
    assert printed_in_order(program, "busy", "no longer busy", "on_close ran", "SocketIOServer returned"), (
        program.output()
    )
    assert "Socket.IO server interrupted; shutting down" in program.stderr(), program.output()
    assert client.wait_closed(10)
    client.close()


@pytest.mark.parametrize("mode", ["hook", "ioloop", "thread"])
def test_stop_makes_the_blocking_call_return(run_program: Callable[..., Program], mode: str) -> None:
    """stop() from a hook, IOLoop.instance().stop() from a hook, stop() from a thread via add_callback."""
    program = run_program("stop_from_hook.py", mode)
    client = echo_client(program.socket_io_url(), "hello")
    if mode == "thread":
        program.tell("stop")
    else:
        client.send("stop")
    assert_clean_exit(program, program.wait())
    assert printed_in_order(program, "on_close ran", "SocketIOServer returned"), program.output()
    assert "interrupted" not in program.stderr(), program.output()
    assert client.wait_closed(10)
    client.close()


class TestBacklog(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_the_listen_backlog_is_large_by_default_and_can_be_set(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
        seen: list[int] = []
        original = tornado.netutil.bind_sockets

        def recording(*args: Any, **kwargs: Any) -> list[socket.socket]:
            if "backlog" in kwargs:  # the HTTP listener (the Flash policy server binds its own)
                seen.append(kwargs["backlog"])
            return original(*args, **kwargs)

        tornado.netutil.bind_sockets = recording  # type: ignore[assignment]
        try:
            SocketIOServer(app, port=0, address="127.0.0.1").stop()
            SocketIOServer(app, port=0, address="127.0.0.1", backlog=64).stop()
        finally:
            tornado.netutil.bind_sockets = original
        assert seen == [tornad_io.server.DEFAULT_BACKLOG, 64]
        assert tornad_io.server.DEFAULT_BACKLOG >= 1024
