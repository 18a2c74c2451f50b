"""The 404 for URLs no route matched, with a hint when a page used the wrong ``resource``.

A page whose ``resource`` option does not match any ``routes()`` mount would
otherwise sit at "connecting" while the server logs a bare 404.  When an
application has no ``default_handler_class`` of its own, tornad_io installs
:class:`UnroutedHandler` as that (its registry does, when the application
first serves a Socket.IO request or ``SocketIOServer`` starts it): a plain
404 as Tornado's own, plus a WARNING naming the mounted resources when the
URL looks like a 0.6 transport URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Final

import tornado.routing
import tornado.web

from tornad_io.settings import ALL_PROTOCOLS

__all__ = ["UnroutedHandler", "install", "mounted_resources"]

log = logging.getLogger(__name__)

#: The path of a 0.6 transport request, whatever its resource.
_TRANSPORT_URL: Final = re.compile(
    r"/(?P<resource>.+?)/(?:" + "|".join(re.escape(name) for name in ALL_PROTOCOLS) + r"|socket\.io\.js)(?:/.*)?$"
)


def mounted_resources(application: tornado.web.Application) -> list[str]:
    """The ``resource`` patterns that ``routes()`` mounted in ``application``, in order."""
    found: list[str] = []

    def walk(router: Any) -> Iterable[str]:
        for rule in getattr(router, "rules", ()):
            resource = getattr(rule.matcher, "resource", None)
            if isinstance(resource, str):
                yield resource
            elif isinstance(rule.target, tornado.routing.Router):
                yield from walk(rule.target)

    for resource in walk(application.wildcard_router):
        if resource not in found:
            found.append(resource)
    return found


class UnroutedHandler(tornado.web.RequestHandler):
    """A 404 for URLs no route matched, with a hint when a page used the wrong ``resource``.

    tornad_io installs it as the application's ``default_handler_class``
    when the application has none.
    """

    def prepare(self) -> None:
        match = _TRANSPORT_URL.match(self.request.path)
        if match is not None:
            mounted = mounted_resources(self.application)
            log.warning(
                "404 %s %s: this looks like a Socket.IO 0.6 URL for resource %r, but routes() mounted %s; "
                "the page's resource option must match one of them",
                self.request.method,
                self.request.path,
                match.group("resource"),
                ", ".join(repr(resource) for resource in mounted) or "none",
            )
        raise tornado.web.HTTPError(404)

    def check_xsrf_cookie(self) -> None:
        """A 404 is a 404, whatever the method."""


def install(application: tornado.web.Application) -> None:
    """Make :class:`UnroutedHandler` the application's ``default_handler_class``, unless it has one."""
    if application.settings.get("default_handler_class") is None:
        application.settings["default_handler_class"] = UnroutedHandler
