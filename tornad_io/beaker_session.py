"""``self.session``: a Beaker session bound to a Socket.IO connection.

The session is keyed by the Socket.IO session id, not by a browser cookie:
a 0.6 connection spans many HTTP requests (or one WebSocket) and the client
keeps no cookie of its own.  ``session_opts`` takes the options Beaker's
``SessionMiddleware`` takes, ``session.``-prefixed (``{"session.type": "file",
"session.data_dir": "/var/lib/app/sessions"}``); the default is Beaker's
memory backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import beaker.container
import beaker.session
import beaker.util

__all__ = ["discard_session", "open_session", "session_options"]

#: Options that only make sense for cookie-keyed sessions.
_COOKIE_ONLY = {"key", "secret", "cookie_expires", "cookie_domain", "cookie_path", "secure", "httponly",
                "samesite", "auto", "log_file", "invalidate_corrupt"}


def session_options(session_opts: Mapping[str, Any]) -> dict[str, Any]:
    """Beaker ``Session`` keyword arguments from ``session.``-prefixed ``session_opts``."""
    options: dict[str, Any] = {"type": "memory"}
    for key, value in session_opts.items():
        for prefix in ("beaker.session.", "session."):
            if key.startswith(prefix):
                options[key[len(prefix):]] = value
                break
    beaker.util.coerce_session_params(options)
    return {key: value for key, value in options.items() if key not in _COOKIE_ONLY and value is not None}


def open_session(session_id: str, session_opts: Mapping[str, Any]) -> beaker.session.Session:
    """Load (or create) the Beaker session of ``session_id``."""
    return beaker.session.Session({}, id=session_id, use_cookies=False, **session_options(session_opts))


def discard_session(session: beaker.session.Session) -> None:
    """Remove a session from its backend when its connection ends."""
    session.clear()
    namespace = getattr(session, "namespace", None)
    if namespace is None:
        return
    namespace.remove()
    if isinstance(namespace, beaker.container.MemoryNamespaceManager):
        # The memory backend empties the session's dict but keeps it in its
        # process-wide table; drop the entry, or every connection leaks one.
        table = beaker.container.MemoryNamespaceManager.namespaces
        with table.mutex:
            table.dict.pop(namespace.namespace, None)
