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
from typing import ClassVar

from tornad_io.connection import TransportKind
from tornad_io.transports.http import HTTPTransport

__all__ = ["XHRPollingTransport"]


class XHRPollingTransport(HTTPTransport):
    protocol: ClassVar[str] = "xhr-polling"
    kind: ClassVar[TransportKind] = TransportKind.POLL

    content_type: ClassVar[str] = "text/plain; charset=UTF-8"

    def render_payload(self, payload: str) -> str:
        """The response body for ``payload`` (jsonp wraps it in a callback)."""
        return payload

    # -- Transport -------------------------------------------------------------------------

    def push_payload(self, payload: str) -> asyncio.Future[None] | None:
        if self._finished:
            return None
        self.release()
        self.set_header("Content-Type", self.content_type)
        written = self.finish(self.render_payload(payload).encode("utf-8"))
        if self.connection is not None:
            self.connection.detach(self)
        return written

    def terminate(self, reason: str) -> None:
        if self._finished:
            return
        self.release()
        self.write_session_ended(reason)
        self.finish()
