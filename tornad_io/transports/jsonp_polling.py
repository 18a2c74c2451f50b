"""The ``jsonp-polling`` transport: polls loaded as ``<script>``, sends by a hidden form.

URLs (protocol-0.6.md §3): handshake ``GET .../jsonp-polling//<ts>/<i>``, poll
``GET .../<sid>/<ts>/<i>``, send ``POST .../<sid>/<ts0>/<i>``.  ``<i>`` is
the page's index into ``io.JSONP``; a poll answers the script
``io.JSONP[<i>]._("<payload>");``.  The index is the only text from the URL
that reaches the script, so it must be a short decimal number.  Everything
else is xhr-polling's.
"""

from __future__ import annotations

import re
from typing import ClassVar

from tornad_io.codec import decode_form_payload
from tornad_io.transports.http import Refusal
from tornad_io.transports.script import js_string
from tornad_io.transports.xhr_polling import XHRPollingTransport

__all__ = ["JSONPPollingTransport"]

#: ``<ts>/<i>``: the callback index is the last path segment, at most six digits.
_INDEX = re.compile(rb"(?:.*/)?(\d{1,6})")


class JSONPPollingTransport(XHRPollingTransport):
    protocol: ClassVar[str] = "jsonp-polling"
    enabled_as: ClassVar[str] = "jsonp-polling"
    content_type: ClassVar[str] = "text/javascript; charset=UTF-8"

    callback_index = "0"

    def check_poll(self) -> Refusal | None:
        found = _INDEX.fullmatch(self.path_kwargs.get("tail") or b"")
        if found is None:
            return Refusal(400, "jsonp-polling needs a numeric callback index")
        self.callback_index = str(int(found.group(1)))
        return None

    def render_payload(self, payload: str) -> str:
        return f"io.JSONP[{self.callback_index}]._({js_string(payload)});"

    decode = staticmethod(decode_form_payload)
