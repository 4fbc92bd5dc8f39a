"""POST the outcomes of an invocation to an HTTP endpoint, signed with Standard Webhooks (stdlib urllib).

One request per invocation: `{"type": "imm_batch_updater.outcomes", "timestamp", "data": {"request_id",
"function", "source", "duration_ms", "results": [...]}}` with the headers `webhook-id` (one id per notification,
kept across this sink's retries so the receiver can de-duplicate), `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}` with the base64-decoded part of `whsec_...`).

- Explicit timeouts (RESULT_SINK_TIMEOUT_MS, cut to what is left of the invocation), at most RESULT_SINK_ATTEMPTS
  attempts for network errors, timeouts, 408, 425, 429 and 5xx. Any 2xx is success.
- Redirects are not followed: a signed notification is never re-sent to another address.
- Only `http` and `https` URLs; without RESULT_WEBHOOK_SECRET nothing is sent (unsigned notifications could be
  forged by anyone who knows the URL).
- Anti-loop: RESULT_WEBHOOK_SECRET must not be one of the secrets the function's own HTTP trigger accepts
  (WEBHOOK_SECRET). With a shared secret a notification sent to the function's own URL would be accepted, answered
  `invalid`, and notified again, forever; with distinct secrets it is refused with 401 and goes nowhere.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imm_batch_updater.config import sink_filter, text
from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.sinks.base import (
    Invocation,
    SinkConfigError,
    SinkDeliveryError,
    deliver,
    notification_many,
    report_failure,
    select,
)
from imm_batch_updater.strictjson import dumps

name = "webhook"
variables: tuple[str, ...] = ("RESULT_WEBHOOK_URL", "RESULT_WEBHOOK_SECRET", "RESULT_WEBHOOK_FILTER")
USER_AGENT = "imm-batch-updater-webhook/1"
RETRIABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Config:
    url: str
    secret: str | None = field(default=None, repr=False)
    filter: str | None = None
    name: str = name

    def build(self, ctx: Context) -> WebhookSink:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkConfigError(name, "RESULT_WEBHOOK_URL must be an http:// or https:// URL", refused=False)
        secret = self.secret or ""
        if not secret.startswith("whsec_"):
            raise SinkConfigError(
                name,
                "RESULT_WEBHOOK_SECRET (whsec_<base64>) is required to sign notifications; nothing is sent unsigned",
                refused=False,
            )
        if secret in ctx.settings.webhook_secrets:
            raise SinkConfigError(
                name,
                "RESULT_WEBHOOK_SECRET is also accepted by this function's HTTP trigger (WEBHOOK_SECRET): a "
                "notification reaching the function itself would loop; use a different secret",
                refused=True,
            )
        return WebhookSink(self.url, secret, self.filter or ctx.settings.sink_filter, ctx)


def configure(env: Mapping[str, str], warnings: list[str]) -> Config | None:
    url = text(env, "RESULT_WEBHOOK_URL")
    if url is None:
        return None
    return Config(
        url,
        text(env, "RESULT_WEBHOOK_SECRET"),
        sink_filter(env, "RESULT_WEBHOOK_FILTER", warnings),
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_opener = urllib.request.build_opener(_NoRedirect())


def classify(exc: BaseException) -> SinkDeliveryError:
    if isinstance(exc, urllib.error.HTTPError):
        status = exc.code
        exc.close()
        retriable = status >= 500 or status in RETRIABLE_STATUSES
        return SinkDeliveryError(
            f"HTTP{status}", "the receiver refused the notification", retriable=retriable, http_status=status
        )
    if isinstance(exc, (socket.timeout, TimeoutError)) or isinstance(getattr(exc, "reason", None), TimeoutError):
        return SinkDeliveryError("Timeout", "the receiver did not answer in time", retriable=True)
    if isinstance(exc, (urllib.error.URLError, OSError)):
        return SinkDeliveryError("NetworkError", f"network error: {type(exc).__name__}", retriable=True)
    return SinkDeliveryError(type(exc).__name__, "could not send the notification", retriable=False)


class WebhookSink:
    name = name

    def __init__(self, url: str, secret: str, filter: str, ctx: Context) -> None:
        self.url = url
        self._secret = secret
        self.filter = filter
        self.ctx = ctx

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookSink({urlsplit(self.url).hostname!r})"

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        from imm_batch_updater.webhooks import sign

        chosen = select(outcomes, self.filter)
        if not chosen:
            return
        # strictjson.dumps: a lone surrogate (IMM's message may carry one, written as an escape) becomes U+FFFD
        # instead of failing the encoding and losing the notification, dead letters included.
        body = dumps(notification_many(chosen, invocation, duration_ms)).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"

        def post(timeout_s: float) -> int:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **sign(self._secret, msg_id, body, int(time.time())),
            }
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            with _opener.open(request, timeout=timeout_s) as response:
                response.read(65536)
                return int(response.status)

        try:
            deliver(self.ctx, post, classify)
        except SinkDeliveryError as error:
            report_failure(self.name, error, invocation.request_id, total=len(chosen))
            raise
