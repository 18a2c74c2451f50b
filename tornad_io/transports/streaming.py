"""What the streaming transports share: one long response carrying every payload.

htmlfile and xhr-multipart answer the handshake GET with a response that
stays open for the life of the session: each payload is written and flushed
as its own chunk, heartbeats keep it alive, and it ends only when the
connection closes (the client never reopens it, so no server timer ends a
healthy stream).  Client messages arrive by POST, as for polling.

Nothing is written until ``on_open`` has accepted the connection, so a
refused client gets a plain 403 rather than a stream without a session id.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Any, ClassVar

from tornad_io.connection import TransportKind
from tornad_io.transports.http import HTTPTransport

__all__ = ["StreamingTransport"]


class StreamingTransport(HTTPTransport):
    kind: ClassVar[TransportKind] = TransportKind.STREAM

    _ended: asyncio.Future[None] | None = None
    _started = False

    async def get(self, session_id: str = "", **kwargs: Any) -> None:
        # The 0.6 client opens its stream only to handshake; a stream for a
        # known id replaces the current one (e.g. a proxy retrying the GET).
        connection = self.find_connection(session_id) if session_id else None
        self._ended = asyncio.get_running_loop().create_future()
        self.carry(connection, kwargs)
        if self.client_already_gone():
            self.on_connection_close()
        await self._ended

    @abc.abstractmethod
    def start_stream(self) -> None:
        """Set the response headers and write what precedes the first payload."""

    @abc.abstractmethod
    def render_payload(self, payload: str) -> bytes:
        """One payload as the bytes of one chunk of the stream."""

    def _end(self) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def on_connection_close(self) -> None:
        """The client closed the stream: the connection is gone."""
        self._end()
        if self.connection is not None:
            self.connection.transport_lost(self)

    # -- Transport -------------------------------------------------------------------------

    def push_payload(self, payload: str) -> None:
        if self._finished:
            return
        if not self._started:
            self._started = True
            self.set_header("X-Accel-Buffering", "no")  # nginx: pass each chunk on at once
            self.start_stream()
            self.flush()  # headers and preamble as their own chunk, as the original server sent them
        self.write(self.render_payload(payload))
        self.flush()

    def terminate(self, reason: str) -> None:
        if self._finished:
            return
        if not self._started:
            self.set_status(403 if reason in ("refused", "error") else 404)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.write(f"session ended: {reason}")
        self.finish()
        self._end()
