"""The ``xhr-polling`` transport: long-poll GETs out, form POSTs in.

URLs (protocol-0.6.md §3): handshake ``GET /<resource>/xhr-polling//<ts>``,
poll ``GET .../<sid>/<ts>``, send ``POST .../<sid>/send``.  A GET is held
until something is queued for the client or ``socket_io_poll_timeout``
passes (the registry's sweeper then answers it with an empty body, which the
client takes as "nothing yet" and polls again).  Everything queued between two polls goes out,
in order, in the next one.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from tornad_io.connection import TransportKind
from tornad_io.transports.http import HTTPTransport

__all__ = ["XHRPollingTransport"]


class XHRPollingTransport(HTTPTransport):
    protocol: ClassVar[str] = "xhr-polling"
    kind: ClassVar[TransportKind] = TransportKind.POLL
    url_pattern: ClassVar[str] = "/(?P<protocol>xhr-polling)/(?P<session_id>[0-9A-Za-z]*)(?:/(?P<tail>.*))?"

    content_type: ClassVar[str] = "text/plain; charset=UTF-8"

    _answered: asyncio.Future[None] | None = None

    async def get(self, session_id: str = "", **kwargs: Any) -> None:
        connection = self.find_connection(session_id) if session_id else None
        self._answered = asyncio.get_running_loop().create_future()
        self.carry(connection, kwargs)
        if self.client_already_gone():
            self.on_connection_close()
        await self._answered

    def render_payload(self, payload: str) -> str:
        """The response body for ``payload`` (jsonp wraps it in a callback)."""
        return payload

    def _done(self) -> None:
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)

    def on_connection_close(self) -> None:
        """The client aborted the held poll: the session waits for its next one."""
        self._done()
        if self.connection is not None:
            self.connection.transport_lost(self)

    # -- Transport -------------------------------------------------------------------------

    def push_payload(self, payload: str) -> None:
        if self._finished:
            return
        self._done()
        self.set_header("Content-Type", self.content_type)
        self.finish(self.render_payload(payload).encode("utf-8"))
        if self.connection is not None:
            self.connection.detach(self)

    def terminate(self, reason: str) -> None:
        if self._finished:
            return
        self._done()
        self.set_status(403 if reason in ("refused", "error") else 404)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(f"session ended: {reason}")
