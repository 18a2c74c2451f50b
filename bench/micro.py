"""tornad_io's own code per message, timed in process with no sockets: ``python -m bench.micro``.

The end-to-end bench measures tornad_io together with Tornado; this times
the pieces that are tornad_io's alone, on the echo paths the bench drives,
each next to what the bare-Tornado servers do in its place:

* websocket: one 0.6 payload through ``Connection.feed`` to the handler's
  ``on_message`` (an echo ``send``) and out to the transport, a stub here;
* xhr-polling, per request: finding the handler (tornad_io's nested
  rules against Tornado's plain ones), creating and preparing the handler
  (headers, origin check), and reading the POSTed form and its frames.

Reaches into tornad_io's internals (``Connection``, the transports), so a
refactoring there may need a matching change here; it is a measuring aid,
not part of the benchmark's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import time
from collections.abc import Callable
from typing import Any

import tornado.httputil
import tornado.web

from bench.contestants import form_body, frame06, message_text

__all__ = ["main"]


def best_us(fn: Callable[[], Any], number: int, repeat: int = 5) -> float:
    """Best of ``repeat`` timings of ``number`` calls, in µs per call."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - started)
    return best / number * 1e6


class _FakeHTTPConnection:
    """Just enough of an HTTP connection for ``RequestHandler.__init__``."""

    def set_close_callback(self, callback: Any) -> None:
        pass


def _request(method: str, uri: str, body: bytes = b"", content_type: str | None = None) -> Any:
    headers = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1:8888", "Accept": "*/*"})
    if content_type:
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(len(body))
    return tornado.httputil.HTTPServerRequest(
        start_line=tornado.httputil.RequestStartLine(method, uri, "HTTP/1.1"),
        headers=headers,
        body=body,
        connection=_FakeHTTPConnection(),  # type: ignore[arg-type]
    )


async def measure(number: int) -> list[tuple[str, float, float | None, str]]:
    """(what, tornad_io µs, bare Tornado µs or None, note) rows."""
    from tornad_io import SocketIOHandler, codec
    from tornad_io.connection import Connection, TransportKind
    from tornad_io.registry import registry_for
    from tornad_io.transports.http import form_data
    from tornad_io.transports.polling import PollRoute
    from tornad_io.transports.xhr_polling import XHRPollingTransport

    class Echo(SocketIOHandler):
        def on_message(self, message: Any) -> None:
            self.send(message)

    class Stub:
        protocol = "websocket"
        kind = TransportKind.SOCKET

        def __init__(self) -> None:
            self.sent = 0

        def push_frames(self, frames: list[str]) -> None:
            self.sent += 1

        def terminate(self, reason: str) -> None:
            pass

    app = tornado.web.Application(
        [Echo.routes("socket.io")], socket_io_heartbeat_interval=3600.0, socket_io_poll_timeout=600.0
    )
    rows: list[tuple[str, float, float | None, str]] = []

    for charset in ("ascii", "cjk"):
        text = message_text(charset, 7, 42)
        frame = frame06(text)
        stub = Stub()
        connection = Connection(Echo, registry_for(app), app, _request("GET", "/socket.io/websocket"), "websocket")
        connection.start(stub, (), {})
        await asyncio.sleep(0)
        before = stub.sent
        cost = best_us(functools.partial(connection.feed, frame), number)
        if stub.sent - before != 5 * number:
            raise RuntimeError(f"the echo handler answered {stub.sent - before} of {5 * number} messages")
        connection.close()
        rows.append(
            (
                f"websocket message in and out ({charset}): Connection.feed → on_message → send → push",
                cost,
                None,
                "bare Tornado: nothing (its handler echoes the text it got)",
            )
        )
        rows.append(
            (
                f"  of which codec.decode_payload ({charset})",
                best_us(functools.partial(codec.decode_payload, frame), number),
                None,
                "",
            )
        )
        rows.append(
            (
                f"  of which codec.encode_message ({charset})",
                best_us(functools.partial(codec.encode_message, text), number),
                None,
                "",
            )
        )

    class Bare(tornado.web.RequestHandler):
        def get(self, client_id: str) -> None:
            pass

    bare = tornado.web.Application([(r"/hello", Bare), (r"/poll/(\w+)", Bare), (r"/send/(\w+)", Bare)])
    session = "0123456789abcdef0123456789abcdef"
    text = message_text("ascii", 7, 42)
    body = form_body(frame06(text))
    form = "application/x-www-form-urlencoded; charset=utf-8"
    poll = _request("GET", f"/socket.io/xhr-polling/{session}/1700000000000")
    send = _request("POST", f"/socket.io/xhr-polling/{session}/send", body, form)
    bare_poll = _request("GET", "/poll/17")
    bare_send = _request("POST", "/send/17", body, form)
    rows.append(
        (
            "xhr-polling: find the handler, poll GET",
            best_us(lambda: app.find_handler(poll), number),
            best_us(lambda: bare.find_handler(bare_poll), number),
            "Application.find_handler",
        )
    )
    rows.append(
        (
            "xhr-polling: find the handler, send POST",
            best_us(lambda: app.find_handler(send), number),
            best_us(lambda: bare.find_handler(bare_send), number),
            "",
        )
    )

    # The polling transports are HTTPMessageDelegates made by a route bound to the application.
    route = PollRoute(
        {"xhr-polling": XHRPollingTransport}, app, registry_for(app), {"handler_class": Echo, "extra_re": None}
    )
    url = re.compile(r"/(?P<resource>socket\.io)/(?P<protocol>xhr-polling)/(?P<session_id>\w*)(?:/(?P<tail>.*))?")

    def tornadio_handler(request: Any) -> Any:
        found = url.fullmatch(request.path)
        delegate = XHRPollingTransport(route, request, request.connection, found)
        start_line = tornado.httputil.RequestStartLine(request.method, request.uri, request.version)
        delegate.headers_received(start_line, request.headers)
        return delegate

    rows.append(
        (
            "xhr-polling: create the delegate + its head checks (origin, length)",
            best_us(lambda: tornadio_handler(poll), number),
            best_us(lambda: Bare(bare, bare_poll), number),
            "per request, so twice per message",
        )
    )

    def bare_form() -> str:
        arguments: dict[str, list[bytes]] = {}
        tornado.httputil.parse_body_arguments(form, body, arguments, {})
        return arguments["data"][0].decode("utf-8")

    rows.append(
        (
            "xhr-polling: read the POSTed form",
            best_us(lambda: form_data(body), number),
            best_us(bare_form, number),
            "tornad_io: form_data (parse_qs); bare: Tornado's parse_body_arguments",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per timing (default 20000)")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.number))
    print("| what | tornad_io µs | bare Tornado µs | note |")
    print("|---|---:|---:|---|")
    for what, ours, theirs, note in rows:
        print(f"| {what} | {ours:.2f} | {'' if theirs is None else f'{theirs:.2f}'} | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
