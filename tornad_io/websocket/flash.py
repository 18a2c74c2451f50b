"""The Flash socket policy server that the flashsocket transport's movie needs.

Before Flash Player opens a socket to a host it asks that host's port 843 for
a socket policy: it sends ``<policy-file-request/>`` and a NUL byte, and
expects an XML cross-domain policy followed by a NUL, after which the server
closes (protocol-0.6.md §5).  Started by hand, as in 2010::

    FlashPolicyServer(port=8043, policy_file="flashpolicy.xml")
    tornado.httpserver.HTTPServer(application).listen(8888)
    tornado.ioloop.IOLoop.current().start()

Port 843 needs root (or ``CAP_NET_BIND_SERVICE``).  Flash only accepts a
policy served from a port of 1024 or above for destination ports of 1024 or
above.
"""

from __future__ import annotations

import datetime
import importlib.resources
import logging
import os
from typing import Final
from xml.sax.saxutils import quoteattr

import tornado.gen
import tornado.iostream
import tornado.netutil
import tornado.tcpserver

__all__ = ["FlashPolicyServer", "policy_for_origins"]

log = logging.getLogger(__name__)

#: What Flash Player sends, followed by a NUL byte.
POLICY_REQUEST: Final = b"<policy-file-request/>"

_HEADER: Final = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE cross-domain-policy SYSTEM "http://www.macromedia.com/xml/dtds/cross-domain-policy.dtd">\n'
)


def policy_for_origins(origins: list[str]) -> str:
    """A socket policy with one ``allow-access-from`` per ``"host:port"`` entry (``*`` allowed in either half).

    The last ``:`` separates host from port, so ``"[::1]:80"`` works.
    """
    if isinstance(origins, str):
        raise ValueError('origins must be a list of "host:port" strings, not one string')
    lines = [_HEADER + "<cross-domain-policy>"]
    for origin in origins:
        host, sep, port = origin.rpartition(":")
        if not sep or not host or not port:
            raise ValueError(f'origin {origin!r} is not "host:port" (use * for any host or port)')
        lines.append(f"<allow-access-from domain={quoteattr(host)} to-ports={quoteattr(port)}/>")
    lines.append("</cross-domain-policy>\n")
    return "\n".join(lines)


def packaged_policy() -> str:
    """The permissive policy shipped with tornad_io (any domain, any port)."""
    return importlib.resources.files("tornad_io").joinpath("flashpolicy.xml").read_text(encoding="utf-8")


def _load_policy(policy_file: str | os.PathLike[str] | None, policy: str | None) -> str:
    if policy_file is not None:
        try:
            with open(policy_file, encoding="utf-8") as file:
                return file.read()
        except (OSError, UnicodeDecodeError) as exc:
            fallback = "the given policy" if policy is not None else "the packaged policy"
            log.warning("cannot read the Flash policy file %s (%s); serving %s", policy_file, exc, fallback)
    return policy if policy is not None else packaged_policy()


class FlashPolicyServer(tornado.tcpserver.TCPServer):
    """Answers Flash Player's ``<policy-file-request/>``; listens as soon as it is created.

    The policy served is, in this order: the contents of ``policy_file``; the
    XML string ``policy`` (e.g. from :func:`policy_for_origins`); the packaged
    permissive policy.  It is read once, here.  ``port`` may be 0 (any free
    port); the ``port`` attribute then tells which one was bound.
    """

    #: Seconds a client has to send its request before it is disconnected.
    request_timeout: float = 5.0

    def __init__(
        self,
        port: int = 843,
        policy_file: str | os.PathLike[str] | None = None,
        address: str = "",
        policy: str | None = None,
    ) -> None:
        super().__init__()
        self.policy = _load_policy(policy_file, policy)
        self._answer = self.policy.rstrip("\x00").encode("utf-8") + b"\x00"
        sockets = tornado.netutil.bind_sockets(port, address or None)
        self.port: int = sockets[0].getsockname()[1]
        self.add_sockets(sockets)
        log.info("Flash policy server listening on %s:%d", address or "*", self.port)

    async def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[str, int]) -> None:
        try:
            request = await tornado.gen.with_timeout(
                datetime.timedelta(seconds=self.request_timeout),  # a bare number would be a deadline
                stream.read_until(b"\x00", max_bytes=64),
                quiet_exceptions=tornado.iostream.StreamClosedError,
            )
            if request[:-1].strip() == POLICY_REQUEST:
                await stream.write(self._answer)
            else:
                log.debug("not a policy request from %s: %r", address[0], request[:64])
        except TimeoutError:
            log.debug("no policy request from %s within %s s", address[0], self.request_timeout)
        except tornado.iostream.StreamClosedError:
            log.debug("policy client %s closed or sent too much", address[0])
        stream.close()
