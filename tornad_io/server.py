"""``SocketIOServer``: start an application the way the 2010 release did.

``SocketIOServer(application)`` reads ``socket_io_port`` (default 8888) from
the application settings, listens, and starts the Flash policy server when
``flashsocket`` is enabled.  Called outside a running event loop (the 2010
form, at the end of a program) it then runs ``tornado.ioloop.IOLoop.current()``
-- the loop the program configured, ``IOLoop.instance()`` in 2010 code -- so
whatever the program set up on it before (another ``Application.listen``, a
``PeriodicCallback``, an ``add_callback``) runs too.  It blocks until Ctrl-C
(logged; the server then stops as ``stop()`` does), until ``stop()`` is called
(from a hook or callback on that loop, or from another thread through
``IOLoop.add_callback``), or until the program stops the loop itself
(``IOLoop.current().stop()``); every open connection is closed and gets its
``on_close`` before the call returns.

Called while an event loop is already running (inside a coroutine, a test or
an embedding application), it starts listening and returns at once instead;
``stop()`` closes what it opened.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import threading
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from tornad_io.front import PollFront
from tornad_io.registry import registry_for
from tornad_io.settings import Settings
from tornad_io.websocket.flash import FlashPolicyServer, policy_for_origins

__all__ = ["SocketIOServer"]

log = logging.getLogger(__name__)

#: Tornado's ``idle_connection_timeout`` unless the caller passes one: seconds a connection may
#: wait for (or spend sending) the head of its next request.
IDLE_CONNECTION_TIMEOUT: Final = 20.0
#: Connections the kernel queues before ``accept``: Tornado's 128 dropped SYNs while thousands of
#: clients (re)connected at once (after a restart, say). Linux caps it at ``net.core.somaxconn``.
DEFAULT_BACKLOG: Final = 2048
#: Tornado's ``body_timeout`` is ``socket_io_body_timeout`` plus this, unless the caller passes one.
BODY_TIMEOUT_MARGIN: Final = 5.0


class SocketIOServer:
    """An ``HTTPServer`` for ``application`` (and a Flash policy server), configured from its settings.

    ``port`` and ``address`` override ``socket_io_port`` and the default of
    every interface; ``flash_policy_port`` overrides the setting of that
    name (843); ``backlog`` is the listen queue (2048, not Tornado's 128, so
    that thousands of clients reconnecting at once are not dropped).  Other
    keyword arguments (``ssl_options``, ``xheaders``, ...) go to Tornado's
    ``HTTPServer``.

    Two of them have defaults here, because Tornado's own let a client hold
    a socket for an hour with half a request head, or forever with a body
    sent a byte at a time:

    - ``idle_connection_timeout`` (20 s): Tornado applies it while it waits
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

    Outside a running event loop the constructor blocks: it runs
    ``IOLoop.current()`` until Ctrl-C, ``stop()`` or ``IOLoop.current().stop()``,
    then stops the server and returns (see the module docstring).  Inside one it
    calls ``start()`` and returns.
    """

    def __init__(
        self,
        application: tornado.web.Application,
        port: int | None = None,
        address: str = "",
        flash_policy_port: int | None = None,
        backlog: int = DEFAULT_BACKLOG,
        **server_options: Any,
    ) -> None:
        self.application = application
        self.backlog = backlog
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
        self.http_server = tornado.httpserver.HTTPServer(PollFront(application), **server_options)
        self.flash_policy_server: FlashPolicyServer | None = None
        #: The IOLoop the blocking form runs, while it runs and until ``stop()`` ends it.
        self._serving: tornado.ioloop.IOLoop | None = None
        self._relay_stopping: asyncio.Future[None] | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            blocking = True
        else:
            blocking = False
        # Decided above, acted on here: a loop run inside that ``except`` would chain every
        # exception it logs to "RuntimeError: no running event loop".
        if blocking:
            self._serve_until_stopped()
        else:
            self.start()

    def start(self) -> None:
        """Listen (inside a running event loop); the blocking form calls it on the loop it runs."""
        registry_for(self.application).bind()  # settings checked, Redis relay subscribing, before any client
        sockets = tornado.netutil.bind_sockets(self.port, self.address or None, backlog=self.backlog)
        self.port = sockets[0].getsockname()[1]  # the real port when 0 was asked for
        self.http_server.add_sockets(sockets)
        scheme = "https" if self.http_server.ssl_options is not None else "http"
        log.info(
            "Socket.IO server listening on %s:%d (%s://%s:%d/)",
            self.address or "*",
            self.port,
            scheme,
            self.address or "localhost",
            self.port,
        )
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
        When the blocking form is running, it then returns: the IOLoop stops
        once those ``on_close`` calls have run and the Redis relay (if any) has
        stopped.  Call it on the server's IOLoop; from another thread, use
        ``io_loop.add_callback(server.stop)``.
        """
        self.http_server.stop()
        registry = registry_for(self.application)
        registry.close_all("shutdown")
        if registry.relay is not None:
            self._relay_stopping = asyncio.ensure_future(registry.stop_relay())
        if self.flash_policy_server is not None:
            self.flash_policy_server.stop()
            self.flash_policy_server = None
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.add_callback(self._stop_serving, serving)

    def _serve_until_stopped(self) -> None:
        """The blocking form: run the program's IOLoop until ``stop()``, Ctrl-C or ``IOLoop.stop()``."""
        with warnings.catch_warnings():
            # Python 3.12+ warns when asyncio makes the thread's loop on demand; making it is the
            # point here (a program that never touched the IOLoop before).
            warnings.simplefilter("ignore", DeprecationWarning)
            io_loop = tornado.ioloop.IOLoop.current()

        async def begin() -> asyncio.AbstractEventLoop:
            self.start()
            return asyncio.get_running_loop()

        asyncio_loop = io_loop.run_sync(begin)  # listen on the running loop, as start() expects; errors raise here
        self._serving = io_loop
        restore_sigint = self._stop_on_sigint(asyncio_loop)
        interrupted = False
        try:
            io_loop.start()
        except KeyboardInterrupt:  # raised by the program's own SIGINT handler, or a second Ctrl-C
            interrupted = True
        finally:
            restore_sigint()
        # Outside the ``except``: what the shutdown logs is not chained to the KeyboardInterrupt.
        if self._serving is io_loop:  # not ended by stop(): by KeyboardInterrupt or the program's IOLoop.stop()
            if interrupted:
                log.info("Socket.IO server interrupted; shutting down")
            self._serving = None
            io_loop.run_sync(self._stop_and_settle)

    def _stop_on_sigint(self, asyncio_loop: asyncio.AbstractEventLoop) -> Callable[[], object]:
        """Make Ctrl-C schedule the shutdown on the loop; returns what undoes that.

        Python's own handler raises ``KeyboardInterrupt`` wherever the program
        is: inside a task (a handler's request, a WebSocket's reader) the task
        keeps it and raises it again later, from its result.  Like
        ``asyncio.run``, this handler only queues the shutdown, and raises
        ``KeyboardInterrupt`` on a second Ctrl-C.  A SIGINT handler the program
        installed itself, or a SIGINT ignored by the parent process, is left as
        it is, and so is any thread but the main one (signals reach only that).
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            return lambda: None
        interrupted = False

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            nonlocal interrupted
            if interrupted:
                raise KeyboardInterrupt
            interrupted = True
            asyncio_loop.call_soon_threadsafe(self._interrupt)  # threadsafe: it also wakes the loop up

        signal.signal(signal.SIGINT, on_sigint)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _interrupt(self) -> None:
        if self._serving is not None:  # else stop() already runs
            log.info("Socket.IO server interrupted; shutting down")
            self.stop()

    async def _stop_serving(self, io_loop: tornado.ioloop.IOLoop) -> None:
        try:
            await self._settle()
        finally:
            io_loop.stop()

    async def _stop_and_settle(self) -> None:
        self.stop()
        await self._settle()

    async def _settle(self) -> None:
        """Let what ``stop()`` started finish: the ``on_close`` calls it queued, the relay's stop."""
        await asyncio.sleep(0)  # resumes after the callbacks queued before it
        relay_stopping, self._relay_stopping = self._relay_stopping, None
        if relay_stopping is not None:
            try:
                await relay_stopping
            except Exception:
                log.exception("stopping the broadcast relay failed")
