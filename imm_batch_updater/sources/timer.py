"""Timer trigger (scheduled reconfiguration): the trigger's configured `payload` string is the document or array::

    {"triggerTime": "2023-12-26T07:49:00Z", "triggerName": "nightly", "payload": "{\\"ProjectName\\": …}"}

The payload may also name a config object, `{"Source": "oss://bucket/key"}`, whose documents are applied (read
with the role's credentials under the OSS trigger's rules: see `sources.config_object`), so a schedule's content
can change without a redeploy.

An empty or missing payload is `invalid` with a message saying where to put the document (a timer created
without a payload fires with `""`). Message id: `triggerName@triggerTime`, unique per firing, so FC's retries of
one firing share it. The payload is taken as JSON text, never base64: it is typed into the trigger config.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources._body import decode_body
from imm_batch_updater.sources.base import Delivery, EventTrigger, Message, SourceFailure, envelope_failure
from imm_batch_updater.sources.config_object import resolve_source
from imm_batch_updater.strictjson import Decoded, Fault


class TimerSource(EventTrigger):
    name = "timer"
    markers = frozenset({"triggerTime"})  # a dict event without any of these keys is not this source's

    def matches(self, event: Any) -> bool:
        return isinstance(event, dict) and "triggerTime" in event and "triggerName" in event

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        value = event.value
        name, when = value.get("triggerName"), value.get("triggerTime")
        message_id = f"{name}@{when}" if isinstance(name, str) and isinstance(when, str) else None
        around = tuple(f for f in event.faults if f[0] != "/payload")
        if around:
            return Delivery([Message.of(self.name, message_id, envelope_failure(around, "the timer event"))])
        payload = value.get("payload")
        if isinstance(payload, Fault) or (isinstance(payload, str) and payload.strip()):
            body = decode_body(payload, "/payload", ctx.settings.max_body_bytes, base64_allowed=False)
            return Delivery([resolve_source(Message.of(self.name, message_id, body), ctx)])
        if payload is None or isinstance(payload, str):
            text = "the timer payload is empty: set the trigger's payload to an update document (a JSON string)"
            code = "EmptyPayload"
        else:
            text = "the timer payload must be a string holding the update document as JSON"
            code = "InvalidEvent"
        failure = SourceFailure(Status.INVALID, code, text, "/payload")
        return Delivery([Message.of(self.name, message_id, failure)])
