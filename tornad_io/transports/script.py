"""Payloads as JavaScript string literals that are safe inside a page.

jsonp-polling answers ``io.JSONP[i]._("<payload>");`` and htmlfile streams
``<script>parent.s._("<payload>", document);</script>``: the payload is the
only text a client controls there.  ``json.dumps`` with ``ensure_ascii``
escapes quotes, backslashes, control characters, U+2028/U+2029 and all
non-ASCII; escaping ``<``, ``>`` and ``&`` as well means no message can end
the script element (``</script>``) or open an HTML comment (``<!--``).
"""

from __future__ import annotations

import json

__all__ = ["js_string"]

_HTML_SENSITIVE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def js_string(text: str) -> str:
    """``text`` as a double-quoted, ASCII-only JavaScript string literal safe in HTML."""
    return json.dumps(text, ensure_ascii=True).translate(_HTML_SENSITIVE)
