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

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence


class WebhookAuthError(Exception):
    """The request is not authentic. `reason` is safe to log and to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


TOLERANCE_S = 5 * 60


def verify(secrets: Sequence[str], body: bytes, headers: Mapping[str, str]) -> None:
    """Raise WebhookAuthError unless one of `secrets` signed `body` with these headers."""
    from standardwebhooks.webhooks import Webhook

    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if not secrets:
        raise WebhookAuthError("webhook authentication is not configured (WEBHOOK_SECRET is empty)")
    missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(h)]
    if missing:
        raise WebhookAuthError("missing header(s): " + ", ".join(missing))
    try:
        ts = int(lowered["webhook-timestamp"])
    except ValueError:
        raise WebhookAuthError("webhook-timestamp is not unix seconds") from None
    if abs(time.time() - ts) > TOLERANCE_S:
        raise WebhookAuthError("webhook-timestamp is more than 5 minutes off")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookAuthError("the body is not UTF-8") from None
    for secret in secrets:
        try:
            Webhook(secret).verify(text, lowered, json_parse=False)
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
    reach a final outcome is forgotten, so the sender's retry is applied normally.
    """

    def __init__(self, max_entries: int = 10_000, ttl_s: float = 2 * TOLERANCE_S) -> None:
        self._seen: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.ttl_s = ttl_s

    def recall(self, msg_id: str) -> object | None:
        now = time.monotonic()
        with self._lock:
            while self._seen and next(iter(self._seen.values()))[0] < now - self.ttl_s:
                self._seen.popitem(last=False)
            entry = self._seen.get(msg_id)
            return entry[1] if entry else None

    def remember(self, msg_id: str, answer: object) -> None:
        with self._lock:
            self._seen[msg_id] = (time.monotonic(), answer)
            self._seen.move_to_end(msg_id)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
