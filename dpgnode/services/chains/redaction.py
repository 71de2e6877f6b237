"""Chain error texts without credentials, before they leave the node.

Error texts come from chain nodes and their clients. On top of the node's shape-based
secret masking (:func:`dpgnode.redaction.redact_text`: credentials in URLs and queries,
``key=value`` secrets, tokens, private keys), a URL keeps only its scheme, host and port:
hosted RPC endpoints carry their API key in the path (``/v3/<key>``), which no shape gives
away.
"""

from __future__ import annotations

import re

from dpgnode.redaction import redact_text

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^\s/@]*@)?([^\s/?#'\"]+)[^\s'\"]*")
_ERROR_CHARS = 300


def redact(text: str) -> str:
    """``text`` without URL paths, queries, user info or anything shaped like a secret."""
    return _URL.sub(lambda m: f"{m.group(1)}{m.group(2)}", redact_text(text))[:_ERROR_CHARS]
