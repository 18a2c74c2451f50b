"""The ``xhr-multipart`` transport: one ``multipart/x-mixed-replace`` stream (Firefox 3).

``GET .../xhr-multipart/`` answers a stream whose every part is one payload.
Line ends are LF, exactly as the original server wrote them; the client reads
the boundary from the response header, so each stream gets an unguessable
boundary of its own and no message can forge a part break.  Parts are
labelled UTF-8.  Sending is ``POST .../<sid>/send``.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

from tornad_io.transports.streaming import StreamingTransport

__all__ = ["XHRMultipartTransport"]


class XHRMultipartTransport(StreamingTransport):
    protocol: ClassVar[str] = "xhr-multipart"

    boundary = ""

    def start_stream(self) -> None:
        self.boundary = "socketio" + secrets.token_hex(8)
        self.set_header("Content-Type", f'multipart/x-mixed-replace;boundary="{self.boundary}"')
        self.write(f"--{self.boundary}\n".encode("ascii"))

    def render_payload(self, payload: str) -> bytes:
        part = f"Content-Type: text/plain; charset=UTF-8\n\n{payload}\n--{self.boundary}\n"
        return part.encode("utf-8")
