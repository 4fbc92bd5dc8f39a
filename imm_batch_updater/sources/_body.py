"""Message bodies that may arrive base64-encoded (MNS SDKs encode queue messages by default).

Rule: a body that parses as JSON is used as is; otherwise, if it is strict base64 whose decoded bytes are UTF-8
JSON, the decoded bytes are used; anything else is passed on unchanged and ends as `invalid` ("not valid JSON").
JSON is tried first, so a document can never be mistaken for base64.
"""

from __future__ import annotations

import base64
import binascii
import json


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return False
    return True


def body_bytes(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if _is_json(raw):
        return raw
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        return raw
    return decoded if decoded and _is_json(decoded) else raw
