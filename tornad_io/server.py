"""``SocketIOServer``: start an application the way the 2010 release did.

``SocketIOServer(application)`` reads ``socket_io_port`` (default 8888) from
the application settings, listens, starts the Flash policy server when
``flashsocket`` is enabled, and runs the IOLoop until interrupted.  Called
while an event loop is already running (inside a coroutine, a test or an
embedding application), it starts both and returns at once instead;
``stop()`` closes what it opened.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any, Final

import tornado.httpserver
import tornado.netutil
import tornado.web

from tornad_io.registry import registry_for
from tornad_io.settings import Settings
from tornad_io.websocket.flash import FlashPolicyServer, policy_for_origins

__all__ = ["SocketIOServer"]

log = logging.getLogger(__name__)

#: Tornado's ``idle_connection_timeout`` unless the caller passes one: seconds a connection may
#: wait for (or spend sending) the head of its next request.
IDLE_CONNECTION_TIMEOUT: Final = 60.0
#: Tornado's ``body_timeout`` is ``socket_io_body_timeout`` plus this, unless the caller passes one.
BODY_TIMEOUT_MARGIN: Final = 5.0


class SocketIOServer:
    """An ``HTTPServer`` for ``application`` (and a Flash policy server), configured from its settings.

    ``port`` and ``address`` override ``socket_io_port`` and the default of
    every interface; ``flash_policy_port`` overrides the setting of that
    name (843).  Other keyword arguments (``ssl_options``, ``xheaders``, ...)
    go to Tornado's ``HTTPServer``.

    Two of them have defaults here, because Tornado's own let a client hold
    a socket for an hour with half a request head, or forever with a body
    sent a byte at a time:

    - ``idle_connection_timeout`` (60 s): Tornado applies it while it waits
      for a request head, from the end of the previous response on a
      keep-alive connection until the head is complete.  A held poll, an
      htmlfile or xhr-multipart stream and a WebSocket are past their head
      (in progress, or detached from HTTP), so it cannot cut them.
    - ``body_timeout`` (``socket_io_body_timeout`` + 5 s): Tornado closes,
      without an answer, a connection whose body is still arriving after it.
      Only requests with a body have one (polls and streams are GETs); the
      tornad_io transports answer a late body with 408 at
      ``socket_io_body_timeout`` first, so this is a backstop for the
      application's other handlers.  Pass a larger value (or ``None``) if
      those take slow uploads.

    A value passed by the caller, ``None`` included, is used as given.
    """

    def __init__(
        self,
        application: tornado.web.Application,
        port: int | None = None,
        address: str = "",
        flash_policy_port: int | None = None,
        **server_options: Any,
    ) -> None:
        self.application = application
        settings = application.settings
        self.port = int(settings.get("socket_io_port", 8888)) if port is None else port
        self.address = address
        self.flash_policy_port = (
            int(settings.get("flash_policy_port", 843)) if flash_policy_port is None else flash_policy_port
        )
        server_options.setdefault("idle_connection_timeout", IDLE_CONNECTION_TIMEOUT)
        server_options.setdefault(
            "body_timeout", Settings.from_application(settings).body_timeout + BODY_TIMEOUT_MARGIN
        )
        self.http_server = tornado.httpserver.HTTPServer(application, **server_options)
        self.flash_policy_server: FlashPolicyServer | None = None
        self._stopped: asyncio.Event | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._run_forever()
        else:
            self.start()

    def start(self) -> None:
        """Listen (inside a running event loop)."""
        registry_for(self.application).bind()  # settings checked, Redis relay subscribing, before any client
        sockets = tornado.netutil.bind_sockets(self.port, self.address or None)
        self.port = sockets[0].getsockname()[1]  # the real port when 0 was asked for
        self.http_server.add_sockets(sockets)
        log.info("Socket.IO server listening on %s:%d", self.address or "*", self.port)
        if "flashsocket" in Settings.from_application(self.application.settings).enabled_protocols:
            self._start_flash_policy_server()

    def _start_flash_policy_server(self) -> None:
        settings = self.application.settings
        origins = settings.get("socket_io_origins")
        try:
            self.flash_policy_server = FlashPolicyServer(
                port=self.flash_policy_port,
                policy_file=settings.get("flash_policy_file"),
                address=self.address,
                policy=policy_for_origins(origins) if origins is not None else None,
            )
        except PermissionError:
            log.warning(
                "cannot listen on port %d for the Flash policy server: ports below 1024 need root. "
                "Set flash_policy_port to a port above 1024 and map port 843 to it "
                "(e.g. iptables -t nat -A PREROUTING -p tcp --dport 843 -j REDIRECT --to-port 10843); "
                "flashsocket clients cannot connect until then, other transports are unaffected",
                self.flash_policy_port,
            )
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning(
                "port %d is taken, so this process serves no Flash policy; that is expected when another "
                "process on this machine (e.g. a sibling worker) serves it",
                self.flash_policy_port,
            )

    def stop(self) -> None:
        """Stop listening (HTTP and Flash policy) and end every open connection ("shutdown").

        Each connection's ``on_close`` runs on a following IOLoop iteration.
        """
        self.http_server.stop()
        registry = registry_for(self.application)
        registry.close_all("shutdown")
        if registry.relay is not None:
            asyncio.ensure_future(registry.stop_relay())
        if self.flash_policy_server is not None:
            self.flash_policy_server.stop()
            self.flash_policy_server = None
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
