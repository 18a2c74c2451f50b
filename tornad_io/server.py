"""``SocketIOServer``: start an application the way the 2010 release did.

``SocketIOServer(application)`` reads ``socket_io_port`` (default 8888) from
the application settings, listens, and runs the IOLoop until interrupted.
Called while an event loop is already running (inside a coroutine, a test or
an embedding application), it listens and returns at once instead; ``stop()``
closes what it opened.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

__all__ = ["SocketIOServer"]

log = logging.getLogger(__name__)


class SocketIOServer:
    """An ``HTTPServer`` for ``application``, configured from its settings.

    ``port`` and ``address`` override ``socket_io_port`` and the default of
    every interface; other keyword arguments (``ssl_options``, ``xheaders``,
    ...) go to Tornado's ``HTTPServer``.
    """

    def __init__(
        self,
        application: tornado.web.Application,
        port: int | None = None,
        address: str = "",
        **server_options: Any,
    ) -> None:
        self.application = application
        settings = application.settings
        self.port = int(settings.get("socket_io_port", 8888)) if port is None else port
        self.address = address
        self.http_server = tornado.httpserver.HTTPServer(application, **server_options)
        self._stopped: asyncio.Event | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._run_forever()
        else:
            self.start()

    def start(self) -> None:
        """Listen (inside a running event loop)."""
        sockets = tornado.netutil.bind_sockets(self.port, self.address or None)
        self.port = sockets[0].getsockname()[1]  # the real port when 0 was asked for
        self.http_server.add_sockets(sockets)
        log.info("Socket.IO server listening on %s:%d", self.address or "*", self.port)

    def stop(self) -> None:
        """Stop listening; connections already open are left to finish."""
        self.http_server.stop()
        if self._stopped is not None:
            self._stopped.set()

    def _run_forever(self) -> None:
        async def serve() -> None:
            self._stopped = asyncio.Event()
            self.start()
            await self._stopped.wait()

        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            log.info("Socket.IO server interrupted; shutting down")
