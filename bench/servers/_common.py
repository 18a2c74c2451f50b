"""Start-up shared by the server scripts: bind, announce the port, run until told to stop."""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web


def raise_fd_limit() -> None:
    """Allow as many open sockets as the hard limit does (the idle scenario holds 1,000+)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def serve(make_application: Callable[[], tornado.web.Application], description: str, **server_options: Any) -> None:
    """Parse ``--port``, serve ``make_application()`` on 127.0.0.1 and print ``LISTENING <port>``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    options = parser.parse_args()
    raise_fd_limit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        application = make_application()
        sockets = tornado.netutil.bind_sockets(options.port, "127.0.0.1", backlog=2048)
        server = tornado.httpserver.HTTPServer(application, **server_options)
        server.add_sockets(sockets)
        print(f"LISTENING {sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()
        server.stop()

    asyncio.run(main())
