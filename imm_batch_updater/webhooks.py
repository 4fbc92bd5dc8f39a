"""Standard Webhooks (https://www.standardwebhooks.com) verification and signing, on the `standardwebhooks` library.

Verification runs on the raw body before anything parses it. Several secrets (`whsec_...` separated by spaces in
WEBHOOK_SECRET) are accepted at once so a secret can be rotated without downtime. The library compares in constant
time and refuses timestamps more than 5 minutes off either way. Failure reasons are generic on purpose: they never
include a signature, a secret or the body.

    >>> secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    >>> headers = sign(secret, "msg_1", b'{"a":1}')
    >>> verify([secret], b'{"a":1}', headers) is None
    True
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any


class WebhookAuthError(Exception):
    """The request is not authentic. `reason` is safe to log and to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


TOLERANCE_S = 5 * 60
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Unix seconds as a sender writes them: ASCII digits, no sign, no leading zero, no spaces or underscores. The
# library signs `str(floor(float(header)))`, not the header itself, so anything looser would verify against text
# the sender did not send (and `int()` alone takes "+1", " 1 ", "1_0" and non-ASCII digits).
_TIMESTAMP = re.compile(r"(?:0|[1-9][0-9]{0,15})")


def _v1_signatures(header: str) -> str:
    """The well-formed `v1,<base64>` entries of a webhook-signature header, space separated. Entries of other
    versions (`v1a`, `v2`) and malformed ones are skipped, as the specification's reference verifiers do: the
    `standardwebhooks` library raises on the first entry it cannot split or decode, which would hide a valid
    signature that comes after it."""
    kept = []
    for entry in header.split(" "):
        version, comma, signature = entry.partition(",")
        if version != "v1" or not comma or not signature:
            continue
        try:
            base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            continue
        kept.append(entry)
    return " ".join(kept)


def collect_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Header names lower-cased (they compare case-insensitively). One of the webhook headers given twice (in any
    case, or as a list) with different values, or not as text, raises WebhookAuthError: the id checked for replay
    must be the id that was signed. Other headers that are not text are left out."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        name = str(key).lower()
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                if name in WEBHOOK_HEADERS:
                    raise WebhookAuthError(f"{name} is not text")
                continue
            if name in out and out[name] != item:
                if name in WEBHOOK_HEADERS:
                    raise WebhookAuthError(f"{name} is given twice with different values")
                continue
            out[name] = item
    return out


def verify(secrets: Sequence[str], body: bytes, headers: Mapping[str, Any]) -> None:
    """Raise WebhookAuthError unless one of `secrets` signed `body` with these headers."""
    from standardwebhooks.webhooks import Webhook

    lowered = collect_headers(headers)
    if not secrets:
        raise WebhookAuthError(
            "webhook authentication is not configured: WEBHOOK_SECRET holds no usable secret (it is empty, or no "
            "entry is whsec_ followed by the base64 of at least 24 bytes)"
        )
    missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(h)]
    if missing:
        raise WebhookAuthError("missing header(s): " + ", ".join(missing))
    stamp = lowered["webhook-timestamp"]
    if not _TIMESTAMP.fullmatch(stamp):  # at most 16 digits: `int` then always fits a float (no OverflowError)
        raise WebhookAuthError("webhook-timestamp is not unix seconds")
    if abs(time.time() - int(stamp)) > TOLERANCE_S:
        raise WebhookAuthError("webhook-timestamp is more than 5 minutes off")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookAuthError("the body is not UTF-8") from None
    signatures = _v1_signatures(lowered["webhook-signature"])
    if not signatures:
        raise WebhookAuthError("no valid signature for this body")
    checked = {**lowered, "webhook-signature": signatures}
    for secret in secrets:
        try:
            Webhook(secret).verify(text, checked, json_parse=False)
            return
        except Exception:  # noqa: S112 -- WebhookVerificationError, or a malformed signature the library chokes on
            continue
    raise WebhookAuthError("no valid signature for this body")


def sign(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body` (used by the webhook sink, the local dev server and tests)."""
    from datetime import datetime, timezone

    from standardwebhooks.webhooks import Webhook

    ts = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), body.decode("utf-8"))
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


class ReplayGuard:
    """Remembers recent webhook-ids (within the tolerance window) and their final answer, per instance.

    A replayed request is not applied again: it gets the remembered answer. An id whose first delivery did not
    reach a final outcome is forgotten, so the sender's retry is applied normally. The memory is bounded in entries
    and in bytes (answers are kept zlib-compressed; the oldest go first when the total passes `max_bytes`), so
    signed requests cannot make it hold megabytes. An answer that alone compresses to more than `max_answer_bytes`
    is not remembered: a replay of it is applied again, which UpdateBatch makes harmless (it sets, it does not add).
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        ttl_s: float = 2 * TOLERANCE_S,
        max_bytes: int = 8 * 1024 * 1024,
        max_answer_bytes: int = 1024 * 1024,
    ) -> None:
        self._seen: OrderedDict[str, tuple[float, dict[str, Any], bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.max_answer_bytes = max_answer_bytes
        self.bytes = 0

    def recall(self, msg_id: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            while self._seen and next(iter(self._seen.values()))[0] < now - self.ttl_s:
                self._drop_oldest()
            entry = self._seen.get(msg_id)
        if entry is None:
            return None
        _, answer, body = entry
        return {**answer, "body": zlib.decompress(body).decode("utf-8")}

    def remember(self, msg_id: str, answer: dict[str, Any]) -> bool:
        """Keep `answer` (an HTTP response struct) for `msg_id`; False when it is too large to keep."""
        body = zlib.compress(str(answer.get("body", "")).encode("utf-8"), 1)
        if len(body) + len(msg_id) > self.max_answer_bytes:
            return False
        head = {k: v for k, v in answer.items() if k != "body"}
        with self._lock:
            self._forget(msg_id)
            self._seen[msg_id] = (time.monotonic(), head, body)
            self.bytes += len(body) + len(msg_id)
            while len(self._seen) > self.max_entries or self.bytes > self.max_bytes:
                self._drop_oldest()
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _forget(self, msg_id: str) -> None:
        old = self._seen.pop(msg_id, None)
        if old is not None:
            self.bytes -= len(old[2]) + len(msg_id)

    def _drop_oldest(self) -> None:
        msg_id, (_, _, body) = self._seen.popitem(last=False)
        self.bytes -= len(body) + len(msg_id)
