"""The ``xhr-polling`` transport: long-poll GETs out, form POSTs in.

URLs (protocol-0.6.md §3): handshake ``GET /<resource>/xhr-polling//<ts>``,
poll ``GET .../<sid>/<ts>``, send ``POST .../<sid>/send``.  A GET is held
until something is queued for the client or ``socket_io_poll_timeout``
passes (the registry's sweeper then answers it with an empty body, which the
client takes as "nothing yet" and polls again).  Everything queued between two polls goes out,
in order, in the next one.  Requests are answered by a light
``HTTPMessageDelegate``, not a ``RequestHandler`` (see :mod:`tornad_io.transports.polling`).
"""

from __future__ import annotations

from typing import ClassVar

from tornad_io.transports.polling import PollingTransport

__all__ = ["XHRPollingTransport"]


class XHRPollingTransport(PollingTransport):
    protocol: ClassVar[str] = "xhr-polling"
    enabled_as: ClassVar[str] = "xhr-polling"
