"""Application settings that tornad_io reads, with their defaults.

Everything is passed to ``tornado.web.Application(..., **settings)`` as in
2010; :class:`Settings` reads them once per application and checks them, so
a typo in ``enabled_protocols`` fails at the first request with a clear
message instead of silently disabling a transport.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tornad_io.beaker_session import session_options
from tornad_io.origins import OriginPolicy

__all__ = ["ALL_PROTOCOLS", "Settings"]

#: The six transports of Socket.IO 0.6, in the client's order of preference.
ALL_PROTOCOLS: Final = ("websocket", "flashsocket", "htmlfile", "xhr-multipart", "xhr-polling", "jsonp-polling")


@dataclass(frozen=True, slots=True)
class Settings:
    """The tornad_io view of ``application.settings``.

    =================================  =========  ==========================================
    setting                            default    meaning
    =================================  =========  ==========================================
    ``enabled_protocols``              all six    transports served; others answer 403
    ``socket_io_heartbeat_interval``   10.0       seconds between ``~h~`` heartbeats
    ``socket_io_heartbeat_timeout``    8.0        seconds allowed for a heartbeat's echo
    ``socket_io_poll_timeout``         20.0       a held poll is answered empty after this
    ``socket_io_close_timeout``        8.0        a polling session ends without a new poll
    ``socket_io_max_message_size``     1 MiB      largest client payload, in bytes on the wire
    ``session_opts``                   memory     Beaker options, bare or ``session.``-prefixed
    ``socket_io_origins``              own        ``"host:port"`` patterns of allowed pages
    ``socket_io_redis_url``            None       Redis that relays broadcasts between processes
    ``socket_io_redis_channel``        tornad_io  the pub/sub channel of this application's relay
    ``socket_io_keep_sessions``        False      keep Beaker sessions after their connection ends
    ``socket_io_worker_tag``           ""         prefix of this process's session ids
    ``socket_io_body_timeout``         5.0        seconds a POST body may take to arrive (408)
    ``socket_io_max_frames``           1000       frames one client payload may carry
    ``socket_io_max_pending_messages`` 100        undelivered client messages before reading pauses
    ``socket_io_max_buffer_size``      1 MiB      bytes waiting to be written before "slow client"
    ``socket_io_client_js``            None       the 0.6 client file, served at /<resource>/socket.io.js
    ``socket_io_websocket_takeover``   True       read plain-TCP websockets with tornad_io's own reader
    ``socket_io_v5``                   True       also serve socket.io-client 3.x/4.x (``?EIO=4``)
    ``socket_io_ping_interval``        25.0       v5: seconds between Engine.IO pings
    ``socket_io_ping_timeout``         20.0       v5: seconds allowed for a pong
    ``socket_io_max_pending_acks``     1000       v5: emit callbacks awaiting the client's ack
    =================================  =========  ==========================================
    """

    enabled_protocols: frozenset[str] = frozenset(ALL_PROTOCOLS)
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 8.0
    poll_timeout: float = 20.0
    close_timeout: float = 8.0
    max_message_size: int = 1 << 20
    session_opts: Mapping[str, Any] = field(default_factory=dict)
    origins: OriginPolicy = field(default_factory=OriginPolicy)
    redis_url: str | None = None
    redis_channel: str = "tornad_io"
    keep_sessions: bool = False
    worker_tag: str = ""
    body_timeout: float = 5.0
    max_frames: int = 1000
    max_pending_messages: int = 100
    max_buffer_size: int = 1 << 20
    client_js: str | None = None
    websocket_takeover: bool = True
    v5: bool = True
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_pending_acks: int = 1000

    @classmethod
    def from_application(cls, settings: Mapping[str, Any]) -> Settings:
        protocols = settings.get("enabled_protocols", ALL_PROTOCOLS)
        if isinstance(protocols, str):
            raise ValueError("enabled_protocols must be a list of transport names, not a string")
        unknown = set(protocols) - set(ALL_PROTOCOLS)
        if unknown:
            raise ValueError(
                f"enabled_protocols names unknown transports {sorted(unknown)}; known: {list(ALL_PROTOCOLS)}"
            )
        values = cls(
            enabled_protocols=frozenset(protocols),
            heartbeat_interval=float(settings.get("socket_io_heartbeat_interval", 10.0)),
            heartbeat_timeout=float(settings.get("socket_io_heartbeat_timeout", 8.0)),
            poll_timeout=float(settings.get("socket_io_poll_timeout", 20.0)),
            close_timeout=float(settings.get("socket_io_close_timeout", 8.0)),
            max_message_size=int(settings.get("socket_io_max_message_size", 1 << 20)),
            session_opts=dict(settings.get("session_opts") or {}),
            origins=OriginPolicy(settings.get("socket_io_origins")),
            redis_url=settings.get("socket_io_redis_url"),
            redis_channel=str(settings.get("socket_io_redis_channel", "tornad_io")),
            keep_sessions=bool(settings.get("socket_io_keep_sessions", False)),
            worker_tag=str(settings.get("socket_io_worker_tag", "")),
            body_timeout=float(settings.get("socket_io_body_timeout", 5.0)),
            max_frames=int(settings.get("socket_io_max_frames", 1000)),
            max_pending_messages=int(settings.get("socket_io_max_pending_messages", 100)),
            max_buffer_size=int(settings.get("socket_io_max_buffer_size", 1 << 20)),
            client_js=_client_js(settings.get("socket_io_client_js")),
            websocket_takeover=bool(settings.get("socket_io_websocket_takeover", True)),
            v5=bool(settings.get("socket_io_v5", True)),
            ping_interval=float(settings.get("socket_io_ping_interval", 25.0)),
            ping_timeout=float(settings.get("socket_io_ping_timeout", 20.0)),
            max_pending_acks=int(settings.get("socket_io_max_pending_acks", 1000)),
        )
        session_options(values.session_opts)  # a key Beaker does not know fails here, not at first use
        if not re.fullmatch(r"(?:[g-z][0-9a-z]*)?", values.worker_tag):
            raise ValueError(
                "socket_io_worker_tag must be a letter from g to z followed by letters or digits (e.g. 'w1'), "
                "so that it cannot be mistaken for the hexadecimal part of a session id"
            )
        for name in (
            "heartbeat_interval",
            "heartbeat_timeout",
            "poll_timeout",
            "close_timeout",
            "body_timeout",
            "ping_interval",
            "ping_timeout",
        ):
            if getattr(values, name) <= 0:
                raise ValueError(f"socket_io_{name} must be a positive number of seconds")
        for name in ("max_message_size", "max_frames", "max_pending_messages", "max_buffer_size", "max_pending_acks"):
            if getattr(values, name) <= 0:
                raise ValueError(f"socket_io_{name} must be a positive whole number")
        return values


def _client_js(path: Any) -> str | None:
    """The absolute path of ``socket_io_client_js``, which must name a readable file."""
    if path is None:
        return None
    absolute: str = os.path.abspath(os.fspath(path))
    if not os.path.isfile(absolute) or not os.access(absolute, os.R_OK):
        raise ValueError(
            f"socket_io_client_js is {path!r}, which is not a readable file; it should name the "
            "0.6 client, e.g. node_modules/socket.io/support/socket.io-client/socket.io.js after "
            "'npm install socket.io@0.6.18'"
        )
    return absolute
