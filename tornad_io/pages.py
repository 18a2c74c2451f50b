"""What a person (or a page written for node) finds at a Socket.IO mount besides the transports.

* ``/<resource>/socket.io.js``: the 0.6 browser client, when ``socket_io_client_js``
  names the file, where node's socket.io 0.6 served it, so pages written for node
  move over unchanged.
* ``/<resource>/``: a short plain-text page saying what the endpoint is, instead of
  a bare 404 for someone who opens it in a browser.
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

import tornado.web

from tornad_io.registry import registry_for

__all__ = ["ClientScriptHandler", "ResourceInfoHandler"]

log = logging.getLogger(__name__)

class ClientScriptHandler(tornado.web.RequestHandler):
    """``socket_io_client_js`` at ``/<resource>/socket.io.js``, revalidated by ETag on every load.

    The file is read again when it changes on disk (an upgrade shows at once)
    and kept in memory otherwise; Tornado answers a matching ``If-None-Match``
    with 304.
    """

    _cache: ClassVar[dict[str, tuple[float, int, bytes]]] = {}

    def initialize(self, handler_class: Any = None, extra_re: str | None = None) -> None:  # noqa: ARG002
        self.client_js = registry_for(self.application).settings.client_js

    def get(self, **_: Any) -> None:
        if self.client_js is None:
            log.warning("404 %s: set socket_io_client_js to the 0.6 client file to serve it here", self.request.path)
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")  # cached, but checked each time
        self.finish(self._read(self.client_js))

    @classmethod
    def _read(cls, path: str) -> bytes:
        status = os.stat(path)
        cached = cls._cache.get(path)
        if cached is not None and cached[:2] == (status.st_mtime, status.st_size):
            return cached[2]
        with open(path, "rb") as script:
            body = script.read()
        cls._cache[path] = (status.st_mtime, status.st_size, body)
        return body


class ResourceInfoHandler(tornado.web.RequestHandler):
    """``/<resource>/``: what this endpoint is, in plain text."""

    def initialize(self, handler_class: Any = None, extra_re: str | None = None) -> None:  # noqa: ARG002
        self.handler_class = handler_class

    def get(self, **_: Any) -> None:
        settings = registry_for(self.application).settings
        base = self.request.path.rstrip("/")
        name = getattr(self.handler_class, "__qualname__", "a SocketIOHandler")
        if settings.client_js is not None:
            script = f"The client script is served at {base}/socket.io.js."
        else:
            script = (
                "This server does not serve the client script: set socket_io_client_js to the "
                "socket.io.js of the npm package socket.io@0.6.18 to serve it at "
                f"{base}/socket.io.js."
            )
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            f"This is a Socket.IO 0.6 endpoint ({name}, served by tornad_io), not a page.\n"
            f"A page connects to it with the socket.io 0.6 client, e.g.\n"
            f"  new io.Socket(location.hostname, {{port: location.port, resource: '{base.lstrip('/')}'}})\n"
            f"{script}\n"
        )
