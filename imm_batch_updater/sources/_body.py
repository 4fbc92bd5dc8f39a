"""Message bodies carried as strings inside events, which may arrive base64-encoded (MNS SDKs encode queue messages
by default, `Base64TopicMessage` encodes topic messages, and EventBridge passes them on unless the trigger sets
`IsBase64Decode`).

Rule, in this order (the body is decoded once, by `strictjson`):

1. larger than the limit (as delivered): `invalid` `TooLarge` at "";
2. it is JSON: used as is. JSON is tried first, so a document is never mistaken for base64 (base64 of a JSON
   object or array starts with `ey` / `W`, which is never JSON itself);
3. otherwise, with ASCII whitespace removed, it is base64 (standard or URL-safe alphabet, padding optional) of
   UTF-8 JSON: that JSON is used;
4. anything else is `invalid` at "" (the whole document, as the contract pins), the message naming where the
   body sat in the event ("the message body (/Message) is neither a JSON document nor base64 of one").

Only the shape is checked here; documents are validated later, in one place (`documents`).
"""

from __future__ import annotations

import base64
import binascii
import re

from imm_batch_updater.outcome import Status
from imm_batch_updater.sources.base import SourceFailure
from imm_batch_updater.strictjson import Decoded, Fault, NotJson, decode

_STANDARD = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_URLSAFE = re.compile(rb"[A-Za-z0-9_-]+={0,2}")
_WHITESPACE = re.compile(rb"[ \t\r\n]+")  # some encoders wrap base64 at 76 columns


def from_base64(raw: bytes) -> Decoded | None:
    """The decoded JSON when `raw` is base64 (rule 3) of UTF-8 JSON, else None."""
    compact = _WHITESPACE.sub(b"", raw)
    if _STANDARD.fullmatch(compact):
        altchars = None
    elif _URLSAFE.fullmatch(compact):
        altchars = b"-_"
    else:
        return None
    compact = compact.rstrip(b"=")
    compact += b"=" * (-len(compact) % 4)
    try:
        data = base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data:
        return None
    try:
        return decode(data)
    except NotJson:
        return None


def too_large(size: int, limit: int, what: str = "the message") -> SourceFailure:
    return SourceFailure(Status.INVALID, "TooLarge", f"{what} is larger than {limit} bytes (MAX_BODY_BYTES)")


def decode_body(
    value: str | bytes | Fault, path: str, limit: int, base64_allowed: bool = True
) -> Decoded | SourceFailure:
    """The decoded body (see the module docstring), or its `invalid` failure; `path` is where the body sits in the
    event (for the message)."""
    where = path or "the event"
    if isinstance(value, Fault):  # the body string itself is not valid Unicode
        return SourceFailure(Status.INVALID, value.code, f"the message body ({where}) holds {value.reason}")
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) > limit:
        return too_large(len(raw), limit, f"the message body ({where})")
    try:
        return decode(raw)
    except NotJson as exc:
        reason, code = exc.message, exc.code
    if base64_allowed and code == "NotJson":
        decoded = from_base64(raw)
        if decoded is not None:
            return decoded
    if code == "TooDeep":
        return SourceFailure(Status.INVALID, "TooDeep", f"the message body ({where}) is nested too deeply")
    text = f"the message body ({where}) is neither a JSON document nor base64 of one: {reason}"
    if not base64_allowed:
        text = f"the message body ({where}) is not a JSON document: {reason}"
    return SourceFailure(Status.INVALID, "NotJson", text)
