"""HTTP trigger (FC 3.0 built-in runtime): the request arrives as a JSON event, the answer is a response struct.

Routes (any path prefix is accepted, so custom domains and the FC invocation path both work):

| request | answer |
| --- | --- |
| `POST /` (any other path) | apply the document or array; 200 / 207 / the common status |
| `GET /schema` | the request-document JSON Schema, no signature needed |
| `GET /healthz` | 200, no signature needed |
| anything else on those paths | 405 |

With `HTTP_AUTH=webhook` (the default) every POST must carry a valid Standard Webhooks signature, checked on the
raw body before it is parsed; with no `WEBHOOK_SECRET` every POST is refused (fail closed). Client errors are
answered, never raised.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from imm_batch_updater import logs
from imm_batch_updater import outcome as oc
from imm_batch_updater.outcome import ErrorInfo, Outcome
from imm_batch_updater.sources.async_destination import is_destination_record
from imm_batch_updater.sources.base import Message
from imm_batch_updater.webhooks import WebhookAuthError, verify

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "isBase64Encoded": False,
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    }


def _error(status: int, result_status: str, code: str, message: str, **headers: str) -> dict[str, Any]:
    result = Outcome(status=result_status, error=ErrorInfo(code, message, None))
    if result_status == oc.INVALID:
        result.error.details = [{"path": "", "message": message}]
    return _response(status, {"results": [result.to_dict()]}, dict(headers))


def _unauthenticated(ctx: Any, reason: str) -> dict[str, Any]:
    logs.warning("unauthenticated request", request_id=ctx.request_id, reason=reason)
    return _error(401, oc.REJECTED, "Unauthorized", reason, **{"WWW-Authenticate": "Webhook"})


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value)
    return None


class HttpSource:
    name = "http"

    def matches(self, event: Any) -> bool:
        return (
            isinstance(event, dict)
            and isinstance(event.get("requestContext"), dict)
            and isinstance(event["requestContext"].get("http"), dict)
            and not is_destination_record(event)
        )

    def respond(self, event: dict[str, Any], app: Any, ctx: Any) -> dict[str, Any]:
        http = event["requestContext"]["http"]
        method = str(http.get("method") or "").upper()
        path = str(http.get("path") or event.get("rawPath") or "/")
        route = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else ""
        if route in ("schema", "healthz"):
            if method not in ("GET", "HEAD"):
                return _error(405, oc.INVALID, "MethodNotAllowed", f"{method} is not allowed here", Allow="GET, HEAD")
            if route == "healthz":
                return _response(200, {"status": "ok"})
            from imm_batch_updater.validation import schema

            return _response(200, schema(), {"Content-Type": "application/schema+json"})
        if method != "POST":
            return _error(405, oc.INVALID, "MethodNotAllowed", f"{method} is not allowed; POST an update", Allow="POST")
        return self._post(event, app, ctx)

    def _post(self, event: dict[str, Any], app: Any, ctx: Any) -> dict[str, Any]:
        settings = ctx.settings
        headers = event.get("headers") if isinstance(event.get("headers"), dict) else {}
        body = event.get("body") or ""
        if settings.http_auth == "webhook" and not settings.webhook_secrets:
            logs.error(
                "misconfiguration: HTTP_AUTH=webhook but WEBHOOK_SECRET is empty; refusing every POST",
                request_id=ctx.request_id,
            )
        if event.get("isBase64Encoded"):
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError, TypeError):
                text = "the body is marked base64 but is not valid base64"
                if settings.http_auth == "webhook":
                    # The signed bytes are unknown, so the request cannot be authenticated: 401, like any other
                    # unauthenticated request (it must learn nothing else).
                    return _unauthenticated(ctx, text)
                return _error(400, oc.INVALID, "InvalidBody", text)
        else:
            raw = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")

        msg_id = None
        if settings.http_auth == "webhook":
            try:
                verify(settings.webhook_secrets, raw, headers)
            except WebhookAuthError as exc:
                return _unauthenticated(ctx, exc.reason)
            msg_id = _header(headers, "webhook-id")
            remembered = app.replay.recall(msg_id)
            if remembered is not None:
                logs.info("replayed webhook-id: answering from memory", request_id=ctx.request_id, message_id=msg_id)
                return remembered  # type: ignore[no-any-return]

        if len(raw) > settings.max_body_bytes:
            text = f"the body is larger than {settings.max_body_bytes} bytes (MAX_BODY_BYTES)"
            return _error(400, oc.INVALID, "TooLarge", text)  # DESIGN pins 400 for every `invalid`

        message = Message(source=self.name, message_id=msg_id or ctx.request_id, body=raw)
        outcomes = app.run([message], ctx, self.name)
        answer = _response(oc.http_status_for(outcomes), {"results": [o.to_dict() for o in outcomes]})
        if msg_id is not None and all(o.final for o in outcomes):
            app.replay.remember(msg_id, answer)
        return answer
