"""Which web pages may talk to the server: the ``socket_io_origins`` policy.

A browser attaches the visitor's cookies to requests that any page makes, so
a hostile page could open a Socket.IO session in the visitor's name and read
it.  By default only the server's own origin (scheme, host and port of the
request) is allowed.  ``socket_io_origins`` widens that with ``"host:port"``
patterns, ``*`` allowed in either half (``"*.example.com:*"``,
``"app.example.com:443"``, ``"*:*"`` for everyone); a port is the origin's
effective port (80 for http, 443 for https when the Origin names none).

Requests are judged by their ``Origin`` header.  Script and iframe loads
(jsonp-polling, htmlfile) carry none, so for them the ``Referer``'s origin
is judged instead, and a request that says it is cross-site
(``Sec-Fetch-Site``) but shows neither is refused unless everyone is allowed.
"""

from __future__ import annotations

import fnmatch
import functools
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Origin", "OriginPolicy"]

#: How many distinct origins and Host values are remembered parsed.
PARSED_CACHE_SIZE = 1024

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """A web origin: scheme, lower-case host, effective port."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Origin | None:
        """The origin of an ``Origin`` value or any absolute URL; ``None`` for ``null`` or junk.

        Remembered: a server sees the same few origins over and over.
        """
        return _parse_origin(url)

    @classmethod
    def _parse(cls, url: str) -> Origin | None:
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            return None
        return cls(scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme])

    @classmethod
    def of_server(cls, scheme: str, host_header: str) -> Origin | None:
        """The server's own origin as a request reached it (``request.protocol``, ``Host``)."""
        return cls.parse(f"{scheme}://{host_header}")


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parse_origin(url: str) -> Origin | None:
    return Origin._parse(url)


class OriginPolicy:
    """Decides which origins may use the server (see the module docstring)."""

    def __init__(self, patterns: Sequence[str] | None = None) -> None:
        if isinstance(patterns, str):
            raise ValueError('socket_io_origins must be a list of "host:port" patterns, not one string')
        self.patterns: tuple[tuple[str, str], ...] = tuple(self._split(p) for p in patterns or ())
        self.allows_all = ("*", "*") in self.patterns

    @staticmethod
    def _split(pattern: str) -> tuple[str, str]:
        host, sep, port = pattern.strip().lower().rpartition(":")
        if not sep or not host or not port or not (port == "*" or port.isdigit()):
            raise ValueError(f'socket_io_origins entry {pattern!r} is not "host:port" (use * as a wildcard)')
        return host, port

    def allows(self, origin: Origin | None, server: Origin | None) -> bool:
        """Whether a page of ``origin`` may use a server reached as ``server``."""
        if self.allows_all:
            return True
        if origin is None:
            return False
        if origin == server:
            return True
        return any(
            fnmatch.fnmatchcase(origin.host, host) and port in ("*", str(origin.port)) for host, port in self.patterns
        )

    def refusal(self, headers: Mapping[str, str], server: Origin | None) -> str | None:
        """Why a request with these headers must be refused, or ``None`` if it may proceed."""
        if self.allows_all:
            return None
        origin = headers.get("Origin")
        if origin is not None:
            if self.allows(Origin.parse(origin), server):
                return None
            return f"origin {origin!r} is not in socket_io_origins (add it there to allow its pages)"
        referer = headers.get("Referer")
        if referer:
            if self.allows(Origin.parse(referer), server):
                return None
            return f"a page of {referer[:200]!r} is not in socket_io_origins (add its origin there to allow it)"
        if headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
            return "a cross-site request without Origin or Referer cannot be checked against socket_io_origins"
        return None
