"""Start-up shared by the server scripts: bind, announce the port, run until told to stop.

Options every Python server script takes (the runner adds them per
contestant or per scenario):

``--port N``
    TCP port on 127.0.0.1 (0, the default: any free port).
``--listen bench|default``
    ``bench`` (the default): a Tornado ``HTTPServer`` on sockets bound with a
    2,048 listen backlog, the same for every contestant.  ``default``: the way
    each library listens by itself, with its own defaults: tornad_io through
    ``tornad_io.SocketIOServer`` (its documented backlog), the others as
    Tornado's ``Application.listen`` does (Tornado's backlog, 128).  The
    ``connect-c10000`` scenario measures SYN drops this way.
``--uvloop``
    Install uvloop's event loop policy before Tornado starts (the
    ``*-uvloop`` contestants).  Nothing in tornad_io switches it on.

A script can add its own options (``tornadio``: ``--heartbeat-interval``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
from collections.abc import Callable
from time import perf_counter, thread_time
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

#: The listen backlog of ``--listen bench`` (tornad_io's SocketIOServer default too; Linux caps it at somaxconn).
BENCH_BACKLOG = 2048

#: ``listen_default(application, port, server_options)``: start listening the library's own way, inside
#: the running loop; returns the port and a function that stops listening.
DefaultListener = Callable[[tornado.web.Application, int, dict[str, Any]], tuple[int, Callable[[], None]]]


def raise_fd_limit() -> None:
    """Allow as many open sockets as the hard limit does (the idle scenarios hold 1,000 to 10,000+)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


class BroadcastTimes:
    """When each fan-out call started, how long it took and how much CPU it used, until the next read.

    A fan-out handler times its whole call (``Handler.broadcast``, or the loop
    of ``write_message``) with ``time.perf_counter()`` and ``time.thread_time()``
    and records it here.  The wall time includes any moment the OS gave the
    core to another process (the machine may be shared); the thread's CPU time
    is what the call itself kept the IOLoop busy for, garbage collections
    included.  On Linux ``perf_counter`` is ``CLOCK_MONOTONIC``, one clock for
    every process, so the runner can ask for the calls that started inside
    its measurement window, in its own ``perf_counter`` time, once the load
    has stopped: no request has to reach a server busy with the load.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, float]] = []

    def start(self) -> tuple[float, float]:
        return perf_counter(), thread_time()

    def stop(self, started: tuple[float, float]) -> None:
        wall, cpu = started
        self.calls.append((wall, perf_counter() - wall, thread_time() - cpu))

    def read(self, since: float = float("-inf"), until: float = float("inf")) -> dict[str, Any]:
        """Count, longest (wall, CPU) and total time of the calls started in [since, until]; then forget them."""
        chosen = [(wall, cpu) for started, wall, cpu in self.calls if since <= started <= until]
        self.calls = []
        return {
            "broadcast_calls": len(chosen),
            "broadcast_max_s": max((wall for wall, _ in chosen), default=0.0),
            "broadcast_max_cpu_s": max((cpu for _, cpu in chosen), default=0.0),
            "broadcast_total_s": sum(wall for wall, _ in chosen),
        }


#: The one instance a server script's fan-out handler records into.
BROADCAST_TIMES = BroadcastTimes()


class BenchStats(tornado.web.RequestHandler):
    """``GET /bench-stats[?since=T&until=T]``: the fan-out calls that started in that ``perf_counter`` span.

    JSON ``{"broadcast_calls", "broadcast_max_s", "broadcast_total_s"}``;
    every recorded call is forgotten after a read.
    """

    def get(self) -> None:
        since = float(self.get_query_argument("since", "-inf"))
        until = float(self.get_query_argument("until", "inf"))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(BROADCAST_TIMES.read(since, until)))


STATS_ROUTE = (r"/bench-stats", BenchStats)


def serve(
    make_application: Callable[[argparse.Namespace], tornado.web.Application],
    description: str,
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    listen_default: DefaultListener | None = None,
    front: Callable[[tornado.web.Application], tornado.httputil.HTTPServerConnectionDelegate] | None = None,
    **server_options: Any,
) -> None:
    """Parse the options, serve ``make_application(options)`` on 127.0.0.1 and print ``LISTENING <port>``.

    ``front(application)``, if given, is what ``--listen bench``'s ``HTTPServer`` serves instead of the
    application itself (tornad_io's ``PollFront``, as its ``SocketIOServer`` does).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument(
        "--listen",
        choices=("bench", "default"),
        default="bench",
        help="bench: HTTPServer on a 2,048 backlog; default: the library's own way and defaults",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (its event loop policy, set first)")
    if add_arguments is not None:
        add_arguments(parser)
    options = parser.parse_args()
    raise_fd_limit()
    if options.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        application = make_application(options)
        if options.listen == "default" and listen_default is not None:
            port, stop_listening = listen_default(application, options.port, server_options)
        else:
            if options.listen == "default":  # Application.listen's way: Tornado's own backlog (128)
                sockets = tornado.netutil.bind_sockets(options.port, "127.0.0.1")
            else:
                sockets = tornado.netutil.bind_sockets(options.port, "127.0.0.1", backlog=BENCH_BACKLOG)
            server = tornado.httpserver.HTTPServer(
                application if front is None else front(application), **server_options
            )
            server.add_sockets(sockets)
            port, stop_listening = sockets[0].getsockname()[1], server.stop
        print(f"LISTENING {port}", flush=True)
        await stop.wait()
        stop_listening()

    asyncio.run(main())
