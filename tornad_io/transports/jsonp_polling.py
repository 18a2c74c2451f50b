"""The ``jsonp-polling`` transport: polls loaded as ``<script>``, sends by a hidden form.

URLs (protocol-0.6.md §3): handshake ``GET .../jsonp-polling//<ts>/<i>``, poll
``GET .../<sid>/<ts>/<i>``, send ``POST .../<sid>/<ts0>/<i>``.  ``<i>`` is
the page's index into ``io.JSONP``; a poll answers the script
``io.JSONP[<i>]._("<payload>");``.  The index is the only text from the URL
that reaches the script, so it must be a short decimal number.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from tornad_io.codec import Message, decode_form_payload
from tornad_io.transports.script import js_string
from tornad_io.transports.xhr_polling import XHRPollingTransport

__all__ = ["JSONPPollingTransport"]

#: ``<ts>/<i>``: the callback index is the last path segment, at most six digits.
_INDEX = re.compile(r"(?:.*/)?(\d{1,6})")


class JSONPPollingTransport(XHRPollingTransport):
    protocol: ClassVar[str] = "jsonp-polling"
    content_type: ClassVar[str] = "text/javascript; charset=UTF-8"

    callback_index = "0"

    async def get(self, session_id: str = "", **kwargs: Any) -> None:
        found = _INDEX.fullmatch(kwargs.get("tail") or "")
        if found is None:
            self.refuse(400, "jsonp-polling needs a numeric callback index")
        self.callback_index = str(int(found.group(1)))
        await super().get(session_id, **kwargs)

    def render_payload(self, payload: str) -> str:
        return f"io.JSONP[{self.callback_index}]._({js_string(payload)});"

    def decode(self, payload: str, max_frame: int, max_frames: int) -> list[Message]:
        return decode_form_payload(payload, max_frame, max_frames)
