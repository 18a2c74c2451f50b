"""deploy/nginx.conf, for real: nginx in front of two tornad_io processes that share one Redis.

The module starts redis-server, two processes of tests/deploy/cluster_app.py (worker tags w1 and
w2, ``xheaders=True``) and nginx in the foreground with a wrapper configuration whose ``http``
block is the text of deploy/nginx.conf with only its three ports replaced by free ones. Then:

* nginx upgrades a websocket (101), and a process sees the client's address, not nginx's and
  not one the client made up (X-Real-IP / X-Forwarded-For with xheaders);
* a poll for a session of w1 is unknown to w2 (404 when sent there directly) and reaches w1
  through nginx (200), as does a message posted for a session of w2;
* an htmlfile stream passes each payload on while the response stays open;
* in headless Chromium, with the real 0.6.3 client, a websocket page and an xhr-polling page
  whose sessions belong to different processes talk to each other through nginx and Redis;
* last, with w2 stopped, handshakes all go to w1 and a request for a w2 session gets 502.

Raw requests leave from 127.0.0.9 while nginx reaches the processes from 127.0.0.1, so an address
check cannot pass by accident. Nothing is faked: without nginx or redis-server the module is
skipped with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

from tests.deploy.cluster_app import CLIENT_JS
from tests.helpers import messages
from tornad_io.codec import encode_frame

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONF = ROOT / "deploy" / "nginx.conf"


def _installed(name: str) -> str | None:
    """The program's path; Debian puts nginx in /usr/sbin, which an ordinary user's PATH may lack."""
    found = shutil.which(name)
    if found is None:
        for directory in ("/usr/sbin", "/usr/local/sbin"):
            candidate = Path(directory) / name
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return found


NGINX = _installed("nginx")
REDIS_SERVER = _installed("redis-server")

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian package nginx; .ci/run installs it)"),
    pytest.mark.skipif(
        REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server; .ci/run installs it)"
    ),
]

#: Where the raw requests of these tests come from; nginx connects to the processes from 127.0.0.1.
CLIENT_IP = "127.0.0.9"
#: What a client claims to be in its own X-Real-IP / X-Forwarded-For: nginx must not pass it on as the address.
SPOOFED_IP = "203.0.113.7"
TAGS = ("w1", "w2")
SESSION_ID = re.compile(r"(w1|w2)[0-9a-f]{32}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tag_of(session_id: str) -> str:
    found = SESSION_ID.fullmatch(session_id)
    assert found is not None, f"{session_id!r} is not a session id of w1 or w2"
    return found.group(1)


def stamp() -> str:
    return str(time.time_ns() // 1_000_000)


def deployed_config(listen: int, w1: int, w2: int) -> str:
    """deploy/nginx.conf with its three ports replaced, nothing else."""
    text = DEPLOY_CONF.read_text()
    for pattern, replacement in (
        (r"(?m)^(\s*listen\s+)80;", rf"\g<1>{listen};"),
        (r"\b127\.0\.0\.1:8001\b", f"127.0.0.1:{w1}"),
        (r"\b127\.0\.0\.1:8002\b", f"127.0.0.1:{w2}"),
    ):
        text, count = re.subn(pattern, replacement, text)
        assert count > 0, f"deploy/nginx.conf no longer contains {pattern!r}: update this test with it"
    return text


def wrapper_config(directory: Path, http_block: str) -> str:
    """A whole nginx.conf around the deployed text: everything that would touch this machine is in ``directory``."""
    temp_paths = "\n".join(
        f"    {name}_temp_path {directory / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "worker_processes 1;\n"
        "events {\n    worker_connections 256;\n}\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temp_paths}\n"
        "    # ---- deploy/nginx.conf ----\n"
        f"{http_block}\n"
        "}\n"
    )


def wait_until(condition: Callable[[], bool], what: str, describe: Callable[[], str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{describe()}")
        time.sleep(0.05)  # wait-ok: polling a child process (listening, or writing its log)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # nginx: fast shutdown of the master, which stops its worker
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_for_log(cluster: Cluster, name: str, text: str) -> None:
    """Wait until a process has logged ``text`` (it logs before it answers; this only covers output buffering)."""
    wait_until(lambda: text in cluster.log(name), f"{text!r} in the log of {name}", cluster.describe)


@dataclass
class Cluster:
    directory: Path
    port: int = 0
    workers: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def describe(self) -> str:
        parts = []
        for name in (*TAGS, "error", "access"):
            tail = "\n".join(self.log(name).splitlines()[-25:])
            parts.append(f"--- {name}.log (last lines):\n{tail}")
        for name, process in self.processes.items():
            if process.poll() is not None:
                parts.append(f"--- {name} exited with status {process.returncode}")
        return "\n".join(parts)


def start_process(cluster: Cluster, name: str, command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    with open(cluster.directory / f"{name}.log", "wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **options)
    cluster.processes[name] = process
    return process


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    assert NGINX is not None and REDIS_SERVER is not None
    if not CLIENT_JS.is_file():
        pytest.fail(f"{CLIENT_JS} is missing: run `make setup` (npm install)", pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="tornad_io-nginx-"))
    # As root, nginx's worker runs as an unprivileged user that must reach its temp directories.
    directory.chmod(0o755)
    cluster = Cluster(directory)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
        redis_port = free_port()
        redis = start_process(
            cluster,
            "redis",
            [
                REDIS_SERVER,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
        )
        cleanup.callback(stop, redis)
        wait_until(lambda: listening(redis_port), "redis-server to listen", cluster.describe)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        ready = {tag: directory / f"{tag}.port" for tag in TAGS}
        for tag in TAGS:
            worker = start_process(
                cluster,
                tag,
                [
                    sys.executable,
                    "-c",
                    "from tests.deploy.cluster_app import main; main()",
                    str(ready[tag]),
                    tag,
                    redis_url,
                ],
                cwd=ROOT,
                env=env,
            )
            cleanup.callback(stop, worker)
        for tag in TAGS:

            def started(tag: str = tag) -> bool:
                return ready[tag].exists() or cluster.processes[tag].poll() is not None

            wait_until(started, f"process {tag} to listen", cluster.describe, timeout=20)
            assert cluster.processes[tag].poll() is None, f"process {tag} died\n{cluster.describe()}"
            cluster.workers[tag] = int(ready[tag].read_text())

        cluster.port = free_port()
        (directory / "nginx.conf").write_text(
            wrapper_config(directory, deployed_config(cluster.port, cluster.workers["w1"], cluster.workers["w2"]))
        )
        nginx = start_process(
            cluster,
            "nginx",
            # -e: the log of the start-up itself, before error_log is read (Debian's default may be a file)
            [
                NGINX,
                "-p",
                str(directory),
                "-c",
                str(directory / "nginx.conf"),
                "-e",
                str(directory / "error.log"),
                "-g",
                "daemon off;",
            ],
        )
        cleanup.callback(stop, nginx)
        wait_until(lambda: listening(cluster.port) or nginx.poll() is not None, "nginx to listen", cluster.describe)
        assert nginx.poll() is None, f"nginx did not start\n{cluster.log('nginx')}\n{cluster.describe()}"
        yield cluster


# -- raw HTTP, from CLIENT_IP ---------------------------------------------------------------


def connect(port: int, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(CLIENT_IP, 0))


def fetch(port: int, method: str, path: str, body: str | None = None, **headers: str) -> tuple[int, bytes]:
    connection = connect(port)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


SPOOFING = {"X-Real-IP": SPOOFED_IP, "X-Forwarded-For": SPOOFED_IP}


def read_text_frame(stream: IO[bytes]) -> str:
    """One unfragmented text frame from the server (unmasked, as servers send them)."""
    first, second = stream.read(2)
    assert first == 0x81, f"not a final text frame: first byte {first:#x}"
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(stream.read(2), "big")
    elif length == 127:
        length = int.from_bytes(stream.read(8), "big")
    return stream.read(length).decode("utf-8")


def test_nginx_upgrades_a_websocket_and_the_process_sees_the_clients_address(cluster: Cluster) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /socket.io/websocket HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{cluster.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"X-Real-IP: {SPOOFED_IP}\r\nX-Forwarded-For: {SPOOFED_IP}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=10, source_address=(CLIENT_IP, 0)) as sock:
        sock.sendall(request.encode())
        stream = sock.makefile("rb")
        status = stream.readline().decode("latin-1").strip()
        headers = {}
        for raw in iter(stream.readline, b"\r\n"):
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        assert status.startswith("HTTP/1.1 101"), f"{status} {headers}\n{cluster.describe()}"
        assert headers.get("server", "").startswith("nginx"), "the answer did not come through nginx"
        assert headers["upgrade"].lower() == "websocket"
        expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert headers["sec-websocket-accept"] == expected.decode()
        received: list[Any] = []
        while len(received) < 2:  # the session id, then on_open's greeting
            received += messages(read_text_frame(stream))
        stream.close()
    session_id, greeting = received[:2]
    tag = tag_of(session_id)
    assert greeting == {"worker": tag, "ip": CLIENT_IP}
    wait_for_log(cluster, tag, f"open websocket {session_id[:8]} from {CLIENT_IP}")


def test_a_poll_reaches_the_process_of_its_session_and_only_that_one(cluster: Cluster) -> None:
    sessions: dict[str, str] = {}
    for _attempt in range(10):  # round robin: two handshakes normally suffice
        status, body = fetch(cluster.port, "GET", f"/socket.io/xhr-polling//{stamp()}", **SPOOFING)
        assert status == 200, f"handshake answered {status}: {body!r}\n{cluster.describe()}"
        session_id, greeting = messages(body)[:2]
        tag = tag_of(session_id)
        assert greeting == {"worker": tag, "ip": CLIENT_IP}
        sessions.setdefault(tag, session_id)
        if len(sessions) == len(TAGS):
            break
    else:
        raise AssertionError(f"every handshake went to {list(sessions)}\n{cluster.describe()}")
    w1, w2 = sessions["w1"], sessions["w2"]

    # Straight to the other process, a session id is unknown there.
    assert fetch(cluster.workers["w2"], "GET", f"/socket.io/xhr-polling/{w1}/{stamp()}")[0] == 404
    assert fetch(cluster.workers["w1"], "GET", f"/socket.io/xhr-polling/{w2}/{stamp()}")[0] == 404

    # Through nginx, w1's poll is held by w1 until there is something for it ...
    held = connect(cluster.port)
    try:
        held.request("GET", f"/socket.io/xhr-polling/{w1}/{stamp()}")
        # ... which a message posted for w2's session (routed to w2, relayed by Redis) brings.
        status, body = fetch(
            cluster.port,
            "POST",
            f"/socket.io/xhr-polling/{w2}/send",
            body=urllib.parse.urlencode({"data": encode_frame("wake up, w1")}),
            **{"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (status, body) == (200, b"ok"), f"{status} {body!r}\n{cluster.describe()}"
        response = held.getresponse()
        answer = response.read()
        assert response.status == 200, f"{response.status} {answer!r}\n{cluster.describe()}"
        assert "wake up, w1" in messages(answer)
    finally:
        held.close()
    for tag, session_id in sessions.items():
        wait_for_log(cluster, tag, f"open xhr-polling {session_id[:8]} from {CLIENT_IP}")


def read_stream_until(response: http.client.HTTPResponse, wanted: bytes, so_far: bytes, describe: str) -> bytes:
    """Read a streamed response until ``wanted`` is in it; a read that waits 5 s fails (buffered by nginx?)."""
    while wanted not in so_far:
        try:
            chunk = response.read1(65536)
        except TimeoutError:
            raise AssertionError(
                f"{wanted!r} did not come through within 5 s (held back by nginx?); got {so_far!r}\n{describe}"
            ) from None
        assert chunk, f"the stream ended before {wanted!r}; got {so_far!r}\n{describe}"
        so_far += chunk
    return so_far


def test_a_stream_passes_each_payload_through_as_it_is_written(cluster: Cluster) -> None:
    stream = connect(cluster.port, timeout=5)
    try:
        stream.request("GET", f"/socket.io/htmlfile//{stamp()}")
        response = stream.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/html")
        received = read_stream_until(response, b"worker", b"", cluster.describe())  # id and greeting
        found = re.search(rb"w[12][0-9a-f]{32}", received)
        assert found is not None, received
        streaming_tag = tag_of(found.group().decode())
        # A message from a polling session, broadcast while the stream stays open, arrives on it at once.
        sender = ""
        for _attempt in range(4):  # preferably a session of the other process: Redis relays it
            status, body = fetch(cluster.port, "GET", f"/socket.io/xhr-polling//{stamp()}")
            sender = str(messages(body)[0])
            if tag_of(sender) != streaming_tag:
                break
        status, body = fetch(
            cluster.port,
            "POST",
            f"/socket.io/xhr-polling/{sender}/send",
            body=urllib.parse.urlencode({"data": encode_frame("down the stream")}),
            **{"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (status, body) == (200, b"ok")
        read_stream_until(response, b"down the stream", received, cluster.describe())
    finally:
        stream.close()


# -- the browser --------------------------------------------------------------------------


class Tab:
    """One page.html through nginx, with the real client on one transport."""

    def __init__(self, context: BrowserContext, cluster: Cluster, transport: str) -> None:
        self.cluster = cluster
        self.transport = transport
        self.page: Page = context.new_page()
        self.network: list[str] = []
        self.page.on("response", lambda r: self.network.append(f"{r.status} {r.request.method} {r.url}"))
        self.page.on("requestfailed", lambda r: self.network.append(f"FAILED {r.method} {r.url}: {r.failure}"))
        self.page.on("console", lambda m: self.network.append(f"console.{m.type}: {m.text}"))
        self.page.goto(f"{cluster.url}/page.html?transport={transport}")

    def log(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => window.LOG || []")  # type: ignore[no-any-return]

    def describe(self) -> str:
        lines = [f"--- {self.transport} page log:", *map(str, self.log()), "--- its requests:", *self.network[-30:]]
        return "\n".join(lines) + "\n" + self.cluster.describe()

    def wait(self, expression: str, arg: Any, what: str, timeout: float = 10) -> None:
        try:
            self.page.wait_for_function(expression, arg=arg, timeout=timeout * 1000)
        except PlaywrightError as exc:
            problem = f"{self.transport} page: no {what} within {timeout} s ({exc})"
            raise AssertionError(f"{problem}\n{self.describe()}") from None

    def session(self) -> str:
        """Wait for the connect event; the session id the client got."""
        self.wait("() => window.LOG && window.LOG.length > 0", None, "connect event")
        first = self.log()[0]
        assert first["event"] == "connect" and first["transport"] == self.transport, self.describe()
        return str(first["sessionid"])

    def messages(self) -> list[Any]:
        return [entry["value"] for entry in self.log() if entry["event"] == "message"]

    def wait_message(self, value: str) -> None:
        self.wait("v => window.LOG.some(e => e.event === 'message' && e.value === v)", value, repr(value))

    def say(self, text: str) -> None:
        self.page.evaluate("text => window.say(text)", text)


def test_a_websocket_page_and_a_polling_page_on_two_processes_talk(cluster: Cluster, browser: Browser) -> None:
    context = browser.new_context()
    try:
        websocket = Tab(context, cluster, "websocket")
        websocket_tag = tag_of(websocket.session())
        for attempt in itertools.count(1):  # open polling pages until one lands on the other process
            polling = Tab(context, cluster, "xhr-polling")
            if tag_of(polling.session()) != websocket_tag:
                break
            polling.page.close()
            assert attempt < 8, f"every polling page landed on {websocket_tag}\n{cluster.describe()}"
            # Round robin counts every request, and a page load makes an even number of them (page,
            # client, favicon, handshake): without one more request every handshake would land on
            # the same process as the last.
            assert fetch(cluster.port, "GET", "/favicon.ico")[0] == 204
        polling_tag = tag_of(str(polling.log()[0]["sessionid"]))
        # Each greeting names its process and the browser's address (nginx and Chromium share 127.0.0.1).
        for tab, tag in ((websocket, websocket_tag), (polling, polling_tag)):
            tab.wait("() => window.LOG.some(e => e.event === 'message')", None, "greeting")
            assert tab.messages()[0] == {"worker": tag, "ip": "127.0.0.1"}, tab.describe()

        websocket.say(f"from the websocket page on {websocket_tag}")
        polling.wait_message(f"from the websocket page on {websocket_tag}")
        polling.say(f"from the polling page on {polling_tag}")
        websocket.wait_message(f"from the polling page on {polling_tag}")
        polling.say("and once more")
        websocket.wait_message("and once more")

        assert f"from the websocket page on {websocket_tag}" not in websocket.messages()  # exclude=self
        for tab in (websocket, polling):
            assert not any(entry["event"] in ("disconnect", "connect_failed") for entry in tab.log()), tab.describe()
            assert not any(" 404 " in f" {line} " or "FAILED" in line for line in tab.network), tab.describe()
    finally:
        context.close()


# Stops process w2 for good: keep this test the last of the module.
def test_with_one_process_down_handshakes_go_to_the_other_and_its_sessions_get_502(cluster: Cluster) -> None:
    stop(cluster.processes["w2"])
    for _attempt in range(4):  # round robin would pick w2 for every other one
        status, body = fetch(cluster.port, "GET", f"/socket.io/xhr-polling//{stamp()}")
        assert status == 200, f"{status} {body!r}\n{cluster.describe()}"
        assert tag_of(str(messages(body)[0])) == "w1"
    # A session of the stopped process cannot be served anywhere else: the client connects again.
    assert fetch(cluster.port, "GET", f"/socket.io/xhr-polling/w2{'0' * 32}/{stamp()}")[0] == 502
