"""Message bodies that may arrive base64-encoded (MNS SDKs encode queue messages by default, `Base64TopicMessage`
encodes topic messages, and EventBridge passes them on unless the trigger sets `IsBase64Decode`).

Detection rule, in this order:

1. the body parses as JSON: it is used as is. JSON is tried first, so a document is never mistaken for base64
   (base64 of a JSON object or array starts with `ey` / `W`, which is never JSON itself);
2. otherwise, with ASCII whitespace removed, it is base64 (standard or URL-safe alphabet, padding optional) whose
   bytes are UTF-8 JSON: the decoded bytes are used;
3. anything else is `invalid` at path "" (the whole document, as DESIGN pins for a body that is not JSON); the
   message names where the body sat in the event ("the message body (/Message) is neither JSON nor base64 of it").

Only the shape is checked here; the document's content is validated later, in one place (`documents`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources.base import Message, SourceFailure

_STANDARD = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_URLSAFE = re.compile(rb"[A-Za-z0-9_-]+={0,2}")
_WHITESPACE = re.compile(rb"[ \t\r\n]+")  # some encoders wrap base64 at 76 columns


def _json_error(data: bytes) -> str | None:
    """None when `data` is JSON, else why not (position only, never the content)."""
    try:
        json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"{exc.msg} (line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return None  # JSON, only too deep: `documents` reports that precisely
    except ValueError:
        return "not valid JSON"
    return None


def from_base64(raw: bytes) -> bytes | None:
    """The decoded bytes when `raw` is base64 (rule 2) of UTF-8 JSON, else None."""
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
        decoded = base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded and _json_error(decoded) is None else None


def decode_body(value: str | bytes, path: str) -> bytes | SourceFailure:
    """The JSON bytes of a message body (see the module docstring), or its `invalid` failure; `path` is where the
    body sits in the event (for the message)."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    reason = _json_error(raw)
    if reason is None:
        return raw
    decoded = from_base64(raw)
    if decoded is not None:
        return decoded
    # The path is the document's ("": the whole of it, DESIGN); where the body sat in the event goes in the text.
    text = f"the message body ({path or 'the event'}) is neither a JSON document nor base64 of one: {reason}"
    return SourceFailure(oc.INVALID, "NotJson", text, "")


def body_message(source: str, message_id: str | None, value: str | bytes, path: str) -> Message:
    """A `Message` carrying the decoded body, or its `invalid` failure."""
    body = decode_body(value, path)
    if isinstance(body, SourceFailure):
        return Message(source=source, message_id=message_id, failure=body)
    return Message(source=source, message_id=message_id, body=body)
