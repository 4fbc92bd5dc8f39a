"""HTTP trigger (FC 3.0 built-in runtime): the request arrives as a JSON event, the answer is a response struct.

Routes (any path prefix is accepted, so custom domains and the FC invocation path both work):

| request | answer |
| --- | --- |
| `POST /` (any other path) | apply the document or array; 200 / 207 / the common status |
| `GET /schema` | the request-document JSON Schema, no signature needed |
| `GET /healthz` | 200 `{"status": "ok"}`, no signature needed |
| anything else | 405 |

With `HTTP_AUTH=webhook` (the default) every POST must carry a valid Standard Webhooks signature, checked on the
raw body before it is parsed; with no `WEBHOOK_SECRET` every POST is refused (fail closed). Header names compare
case-insensitively; a webhook header given twice with different values is refused. A `webhook-id` answered
finally within the tolerance window is not applied again with the same body: the remembered answer is returned
(`ReplayGuard`, kept by this source, keyed by the id and the body's SHA-256); the same id with another body is
another message. Client errors are answered, never raised, and nothing from the request is echoed back unbounded.

A request sent with `X-Fc-Invocation-Type: Async` is an asynchronous invocation: FC has already answered the client
202 and the response struct only reaches the async destination, so a 502/429 in it would be read by nobody and
never retried. Such a request raises `DeliveryIncomplete` after reporting when some outcome is not final (as every
event trigger does), so FC's async retry delivers it again; final outcomes are answered as usual.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, NamedTuple

from imm_batch_updater import logs
from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Detail, ErrorInfo, Outcome, Status
from imm_batch_updater.sources._body import decode_body
from imm_batch_updater.sources.async_destination import is_destination_record
from imm_batch_updater.sources.base import (
    Delivery,
    Message,
    NotJsonEvent,
    SourceFailure,
    bounded_id,
    envelope_failure,
    incomplete,
)
from imm_batch_updater.strictjson import Decoded, dumps
from imm_batch_updater.webhooks import ReplayGuard, WebhookAuthError, collect_headers, verify

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
_HTTP_STATUS = {
    Status.UPDATED: 200,
    Status.DRY_RUN: 200,
    Status.QUEUED: 202,
    Status.INVALID: 400,
    Status.NOT_FOUND: 404,
    Status.CONFLICT: 409,
    Status.REJECTED: 422,
    Status.THROTTLED: 429,
    Status.FAILED: 502,
}
_METHOD = re.compile(r"[A-Z]{1,16}")


def http_status(outcome: Outcome) -> int:
    """The pinned code of one outcome: `rejected` is 403 when IMM refused for permission, 422 otherwise."""
    if outcome.status is Status.REJECTED and outcome.error is not None and outcome.error.permission:
        return 403
    return _HTTP_STATUS[outcome.status]


def http_status_for(outcomes: list[Outcome]) -> int:
    """200 when all succeeded, the common code when all share one (every `queued`: 202), 207 otherwise (pinned)."""
    if not outcomes:
        return 400
    if all(o.ok for o in outcomes):
        return 200
    codes = {http_status(o) for o in outcomes}
    if len(codes) == 1 and not any(o.ok for o in outcomes):
        return codes.pop()
    return 207


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "isBase64Encoded": False,
        "body": dumps(body),
    }


def _error(status: int, result_status: Status, code: str, message: str, **headers: str) -> dict[str, Any]:
    details = (Detail("", message),) if result_status is Status.INVALID else None
    result = Outcome(result_status, error=ErrorInfo(code, message, details))
    return response(status, {"results": [result.to_dict()]}, dict(headers))


def _unauthenticated(ctx: Context, reason: str) -> dict[str, Any]:
    logs.warning("unauthenticated request", request_id=ctx.request_id, reason=reason)
    return _error(401, Status.REJECTED, "Unauthorized", reason, **{"WWW-Authenticate": "Webhook"})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _PostState(NamedTuple):
    """What `answer` needs of a POST: the webhook-id and replay key to remember the answer under (None without
    webhook auth), and whether FC invoked the function asynchronously (nobody reads the answer)."""

    msg_id: str | None
    replay_key: str | None
    asynchronous: bool


def is_async(headers: Any) -> bool:
    """Did FC invoke this HTTP request asynchronously (`X-Fc-Invocation-Type: Async`, the name in any case)?"""
    if not isinstance(headers, dict):
        return False
    for name, value in headers.items():
        if isinstance(name, str) and name.lower() == "x-fc-invocation-type":
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and v.strip().lower() == "async" for v in values):
                return True
    return False


def _lenient(event: NotJsonEvent) -> dict[str, Any] | None:
    """The HTTP event these bytes, which are not UTF-8, would be if read leniently (None when they are not one)."""
    if event.error.code != "NotUtf8":
        return None
    try:
        value = json.loads(event.raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return value if HttpSource().matches(value) else None


class HttpSource:
    name = "http"
    markers = frozenset({"requestContext"})  # a dict event without any of these keys is not this source's

    def __init__(self) -> None:
        self.replay = ReplayGuard()

    def matches(self, event: Any) -> bool:
        return (
            isinstance(event, dict)
            and isinstance(event.get("requestContext"), dict)
            and isinstance(event["requestContext"].get("http"), dict)
            and not is_destination_record(event)
        )

    @staticmethod
    def looks_like_http(event: NotJsonEvent) -> bool:
        """Would these bytes, which are not UTF-8, be an HTTP event if read leniently? (Then they are answered as
        HTTP, not as a direct invocation.)"""
        return _lenient(event) is not None

    def receive(self, event: Decoded | NotJsonEvent, ctx: Context) -> Delivery:
        if isinstance(event, NotJsonEvent):  # an HTTP event that is not UTF-8: the signed bytes are unknown
            text = "the HTTP event is not UTF-8 text"
            if ctx.settings.http_auth == "webhook":
                return Delivery(answer=_unauthenticated(ctx, "the request cannot be authenticated: " + text))
            lenient = _lenient(event)
            if lenient is None or _text(lenient["requestContext"]["http"].get("method")).upper() != "POST":
                return Delivery(answer=_error(400, Status.INVALID, "NotJson", text))
            # A POST: an `invalid` update like any other unreadable body (the outcome line, the sinks).
            failure = SourceFailure(Status.INVALID, "NotJson", text)
            state = _PostState(None, None, is_async(lenient.get("headers")))
            return Delivery([Message.of(self.name, ctx.request_id, failure)], state=state)
        value = event.value
        http = value["requestContext"]["http"]
        method = _text(http.get("method")).upper()
        path = _text(http.get("path")) or _text(value.get("rawPath")) or "/"
        route = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else ""
        shown = method if _METHOD.fullmatch(method) else "this method"  # never echo the request unbounded
        if event.faults and method != "POST":  # (a POST is authenticated first: `_post` answers 401 or 400)
            # Strict input on every route: an event that can never be read strictly is 400, before routing.
            failure = envelope_failure(event.faults, "the HTTP event")
            return Delivery(answer=_error(400, Status.INVALID, failure.code, failure.message))
        if route in ("schema", "healthz"):
            if method not in ("GET", "HEAD"):
                return Delivery(
                    answer=_error(
                        405, Status.INVALID, "MethodNotAllowed", f"{shown} is not allowed here", Allow="GET, HEAD"
                    )
                )
            if route == "healthz":
                return Delivery(answer=response(200, {"status": "ok"}))
            from imm_batch_updater.validation import schema

            return Delivery(answer=response(200, schema(), {"Content-Type": "application/schema+json"}))
        if method != "POST":
            return Delivery(
                answer=_error(
                    405, Status.INVALID, "MethodNotAllowed", f"{shown} is not allowed; POST an " "update", Allow="POST"
                )
            )
        return self._post(event, ctx)

    def _post(self, event: Decoded, ctx: Context) -> Delivery:
        settings = ctx.settings
        webhook = settings.http_auth == "webhook"
        if webhook and not settings.webhook_secrets:
            logs.error(
                "misconfiguration: HTTP_AUTH=webhook but WEBHOOK_SECRET holds no usable secret (empty, or no entry is "
                "whsec_ followed by the base64 of at least 24 bytes); refusing every POST",
                request_id=ctx.request_id,
            )
        value = event.value
        asynchronous = is_async(value.get("headers"))

        def refused(failure: SourceFailure) -> Delivery:
            # The signed bytes are unknown, so with webhook auth the request cannot be authenticated: 401, like any
            # other unauthenticated request (it must learn nothing else). Without it, an `invalid` update like a
            # body that is not JSON: answered 400 and reported (the outcome line, the sinks).
            if webhook:
                return Delivery(answer=_unauthenticated(ctx, "the request cannot be authenticated: " + failure.message))
            message = Message.of(self.name, ctx.request_id, failure)
            return Delivery([message], state=_PostState(None, None, asynchronous))

        if event.faults:
            # A value that can never be sent in the event itself (a duplicate header, a body that is not valid
            # Unicode).
            return refused(envelope_failure(event.faults, "the HTTP event"))
        body = value.get("body")
        if body is None:
            body = ""
        if not isinstance(body, str):
            return refused(
                SourceFailure(Status.INVALID, "InvalidBody", "the HTTP event's body is not a string", "/body")
            )
        if value.get("isBase64Encoded") is True:
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                text = "the body is marked base64 but is not valid base64"
                return refused(SourceFailure(Status.INVALID, "InvalidBody", text, "/body"))
        else:
            raw = body.encode("utf-8")

        msg_id = replay_key = None
        if webhook:
            headers = value.get("headers") if isinstance(value.get("headers"), dict) else {}
            try:
                verify(settings.webhook_secrets, raw, headers)
                # Bounded like every message id: it goes into the replay memory's key, log lines and results.
                msg_id = bounded_id(collect_headers(headers)["webhook-id"])
            except WebhookAuthError as exc:
                return Delivery(answer=_unauthenticated(ctx, exc.reason))
            # The answer is remembered for this id *and* these bytes: a sender that reuses an id for another body
            # gets that body applied and answered, never the other body's answer.
            replay_key = f"{msg_id} {hashlib.sha256(raw).hexdigest()}"
            remembered = self.replay.recall(replay_key)
            if remembered is not None:
                logs.info("replayed webhook-id: answering from memory", request_id=ctx.request_id, message_id=msg_id)
                return Delivery(answer=remembered)

        decoded = decode_body(raw, "the HTTP body", settings.max_body_bytes, base64_allowed=False)
        # Every message becomes an outcome (logged, sent to the sinks), a body too large included.
        state = _PostState(msg_id, replay_key, asynchronous)
        return Delivery([Message.of(self.name, msg_id or ctx.request_id, decoded)], state=state)

    def answer(self, delivery: Delivery, outcomes: list[Outcome], ctx: Context) -> Any:
        answer = response(http_status_for(outcomes), {"results": [o.to_dict() for o in outcomes]})
        state = delivery.state if isinstance(delivery.state, _PostState) else None
        not_final = [o for o in outcomes if not o.final]
        if state is not None and state.replay_key is not None and not not_final:
            if not self.replay.remember(state.replay_key, answer):
                logs.info(
                    "answer too large to remember for replays", request_id=ctx.request_id, message_id=state.msg_id
                )
        if state is not None and state.asynchronous and not_final:
            # Asynchronous: the client already has FC's 202 and nobody reads this answer; raise (after reporting)
            # so FC's async retry delivers the request again, as for every event trigger.
            raise incomplete(not_final, len(outcomes), "asynchronous request")
        return answer
