"""The transports, one module each; :data:`TRANSPORTS` maps protocol names to their classes."""

from __future__ import annotations

from tornad_io.transports.flashsocket import FlashSocketTransport
from tornad_io.transports.htmlfile import HTMLFileTransport
from tornad_io.transports.http import HTTPTransport
from tornad_io.transports.jsonp_polling import JSONPPollingTransport
from tornad_io.transports.polling import PollingTransport
from tornad_io.transports.websocket import WebSocketTransport
from tornad_io.transports.xhr_multipart import XHRMultipartTransport
from tornad_io.transports.xhr_polling import XHRPollingTransport

__all__ = [
    "TRANSPORTS",
    "FlashSocketTransport",
    "HTMLFileTransport",
    "JSONPPollingTransport",
    "WebSocketTransport",
    "XHRMultipartTransport",
    "XHRPollingTransport",
]

#: Every transport tornad_io serves, by the protocol name the client puts in URLs.
TRANSPORTS: dict[str, type[WebSocketTransport] | type[HTTPTransport] | type[PollingTransport]] = {
    transport.protocol: transport
    for transport in (
        WebSocketTransport,
        FlashSocketTransport,
        HTMLFileTransport,
        XHRMultipartTransport,
        XHRPollingTransport,
        JSONPPollingTransport,
    )
}
