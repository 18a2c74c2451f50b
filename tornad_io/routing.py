"""The Tornado rule behind ``SocketIOHandler.routes``.

One rule matches every Socket.IO URL under a resource; inside it, one nested
rule per transport picks the Tornado handler that speaks that transport.
The URL shapes are those the 0.6 client builds (protocol-0.6.md §3)::

    /<resource>[<extraSep><extra>]/websocket
    /<resource>[<extraSep><extra>]/<http transport>/<session id or empty>[/<anything>]
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tornad_io.settings import ALL_PROTOCOLS
from tornad_io.transports import TRANSPORTS

if TYPE_CHECKING:
    from tornad_io.socket_io import SocketIOHandler

__all__ = ["build_rule"]

Rule = tuple[str, list[tuple[str, Any, dict[str, Any]]]]


def build_rule(
    handler_class: type[SocketIOHandler], resource: str, extra_re: str | None = None, extra_sep: str | None = None
) -> Rule:
    """``(pattern, [per-transport rules])``, a rule ``tornado.web.Application`` accepts.

    ``resource`` and ``extra_re`` are regular expressions; ``extra_sep`` is
    literal text between them.
    """
    prefix = f"/(?P<resource>{resource})"
    if extra_re is not None:
        prefix += re.escape(extra_sep or "") + f"(?P<extra>{extra_re})"
    protocols = "|".join(re.escape(protocol) for protocol in ALL_PROTOCOLS)
    options = {"handler_class": handler_class, "extra_re": extra_re}
    transports = [(prefix + transport.url_pattern, transport, options) for transport in TRANSPORTS.values()]
    return (prefix + f"/(?P<protocol>{protocols})(?:/.*)?", transports)
