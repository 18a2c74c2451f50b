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
from typing import ClassVar

from tornad_io.connection import TransportKind
from tornad_io.dialects import Frame
from tornad_io.transports.base import joined
from tornad_io.transports.http import HTTPTransport

__all__ = ["StreamingTransport"]


class StreamingTransport(HTTPTransport):
    kind: ClassVar[TransportKind] = TransportKind.STREAM

    _started = False

    @abc.abstractmethod
    def start_stream(self) -> None:
        """Set the response headers and write what precedes the first payload."""

    @abc.abstractmethod
    def render_payload(self, payload: str) -> bytes:
        """One payload as the bytes of one chunk of the stream."""

    # -- Transport -------------------------------------------------------------------------

    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
        if self._finished:
            return None
        if not self._started:
            self._started = True
            self.set_header("X-Accel-Buffering", "no")  # nginx: pass each chunk on at once
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.set_nodelay(True)  # each chunk is a message: no Nagle wait
            self.start_stream()
            self.flush()  # headers and preamble as their own chunk, as the original server sent them
        self.write(self.render_payload(joined(frames)))
        return self.flush()

    def terminate(self, reason: str) -> None:
        if self._finished:
            return
        if not self._started:
            self.write_session_ended(reason)
        self.finish()
        self.release()
