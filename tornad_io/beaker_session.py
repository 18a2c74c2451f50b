"""``self.session``: a Beaker session bound to a Socket.IO connection.

The session is keyed by the Socket.IO session id, not by a browser cookie:
a 0.6 connection spans many HTTP requests (or one WebSocket) and the client
keeps no cookie of its own.  ``session_opts`` takes Beaker's options either
as its ``Session`` takes them (``{"type": "file", "data_dir": "/var/lib/app/sessions"}``)
or ``session.``-prefixed as its ``SessionMiddleware`` does; the default is
Beaker's memory backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import beaker.container
import beaker.session
import beaker.util

__all__ = ["discard_session", "open_session", "session_options"]

#: Options that only make sense for cookie-keyed sessions: accepted, and ignored.
_COOKIE_ONLY = {"key", "secret", "cookie_expires", "cookie_domain", "cookie_path", "secure", "httponly",
                "samesite", "auto", "log_file", "invalidate_corrupt", "webtest_varname"}

#: Options of Beaker's ``Session`` and of its stock backends.
_KNOWN = {"type", "data_dir", "lock_dir", "timeout", "save_accessed_time", "validate_key", "encrypt_key",
          "encrypt_nonce_bits", "crypto_type", "data_serializer", "url", "table_name", "schema_name",
          "expire", "memcache_module", "bind", "table", "key_length", "db"} | _COOKIE_ONLY


def session_options(session_opts: Mapping[str, Any]) -> dict[str, Any]:
    """Beaker ``Session`` keyword arguments from ``session_opts``.

    Keys may be Beaker's own (``{"type": "file", "data_dir": ...}``, as its
    ``Session`` takes them) or ``session.``-prefixed (as its
    ``SessionMiddleware`` takes them); a key Beaker does not know raises
    ``ValueError`` instead of being ignored.
    """
    options: dict[str, Any] = {"type": "memory"}
    for key, value in session_opts.items():
        name = key
        for prefix in ("beaker.session.", "session."):
            if key.startswith(prefix):
                name = key[len(prefix):]
                break
        if name not in _KNOWN and not name.startswith("sa."):
            raise ValueError(
                f"session_opts has {key!r}, which Beaker sessions do not take; known keys: "
                f"{', '.join(sorted(_KNOWN - _COOKIE_ONLY))} (bare or 'session.'-prefixed)"
            )
        options[name] = value
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
