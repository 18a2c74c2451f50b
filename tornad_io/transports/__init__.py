"""The transports, one module each; :data:`TRANSPORTS` maps protocol names to handlers."""

from __future__ import annotations

from tornad_io.transports.websocket import WebSocketTransport
from tornad_io.transports.xhr_polling import XHRPollingTransport

__all__ = ["TRANSPORTS", "WebSocketTransport", "XHRPollingTransport"]

#: Every transport tornad_io serves, by the protocol name the client puts in URLs.
TRANSPORTS: dict[str, type[WebSocketTransport] | type[XHRPollingTransport]] = {
    transport.protocol: transport for transport in (WebSocketTransport, XHRPollingTransport)
}
