"""The ``htmlfile`` transport: a never-ending HTML page of script tags (old Internet Explorer).

The client loads ``GET .../htmlfile//<ts>`` into a hidden iframe; every
payload arrives as ``<script>parent.s._("<payload>", document);</script>``,
which the browser runs as soon as the chunk arrives.  IE shows nothing until
it has about 256 bytes, hence the padded preamble.  Sending is
``POST .../<sid>/send``.
"""

from __future__ import annotations

from typing import ClassVar

from tornad_io.transports.script import js_string
from tornad_io.transports.streaming import StreamingTransport

__all__ = ["HTMLFileTransport"]

PREAMBLE = b"<html><body>".ljust(256, b" ")


class HTMLFileTransport(StreamingTransport):
    protocol: ClassVar[str] = "htmlfile"

    def start_stream(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(PREAMBLE)

    def render_payload(self, payload: str) -> bytes:
        return f"<script>parent.s._({js_string(payload)}, document);</script>".encode("ascii")
