"""MNS queue trigger through EventBridge (`eventbridge`, `eventSourceType: MNS`), also the work queue's trigger.

One CloudEvent per invocation, or a JSON array of them with batch push (`runOptions.mode: event-streaming`)::

    {"id": "c2g7…", "source": "MNS-fn-trigger", "specversion": "1.0", "type": "mns:Queue:SendMessage",
     "subject": "acs:mns:cn-hangzhou:1649…:queues/updates", "time": "2021-04-08T06:28:17.093Z",
     "data": {"requestId": "606E…", "messageId": "C6DB…", "messageBody": "{\\"ProjectName\\": …}"}}

Recognised by `type`: `source` differs between samples (`MNS-<function>-<trigger>`, `acs:mns`). `messageBody`
may be base64 (the MNS SDK encodes queue messages by default unless the trigger sets `IsBase64Decode`); see
`_body`. Message id: `data.messageId`, else the CloudEvent `id`. The same message twice in one push (at-least-once
delivery) is applied once (`App` drops the later copy by message id). A fault in one item of a batch push (a
duplicate key, a body that is not valid Unicode) makes only that item `invalid`.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources._body import decode_body
from imm_batch_updater.sources.base import (
    Delivery,
    EventTrigger,
    Message,
    SourceFailure,
    envelope_failure,
    event_or_batch,
    first_str,
)
from imm_batch_updater.strictjson import Decoded, Fault

EVENT_TYPE = "mns:Queue:SendMessage"


def _is_queue_event(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == EVENT_TYPE


class MnsQueueSource(EventTrigger):
    name = "mns_queue"
    markers = frozenset({"type"})  # a dict event without any of these keys is not this source's

    def matches(self, event: Any) -> bool:
        return event_or_batch(event, _is_queue_event)

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        value = event.value
        if isinstance(value, list):  # batch push: pointers are /0, /1, ...
            return Delivery([self._one(item, f"/{i}", event, ctx) for i, item in enumerate(value)])
        return Delivery([self._one(value, "", event, ctx)])

    def _one(self, item: Any, base: str, event: Decoded, ctx: Context) -> Message:
        def fail(text: str, where: str, message_id: str | None = None) -> Message:
            return Message.of(self.name, message_id, SourceFailure(Status.INVALID, "InvalidEvent", text, base + where))

        body_path = f"{base}/data/messageBody"
        data = item.get("data") if isinstance(item, dict) else None
        message_id = first_str(data.get("messageId"), item.get("id")) if isinstance(data, dict) else None
        around = tuple(f for f in event.faults_under(base) if f[0] != body_path)
        if around:  # this item's envelope holds a value that can never be sent (a duplicate key, ...)
            return Message.of(self.name, message_id, envelope_failure(around, "the CloudEvent"))
        if not _is_queue_event(item):
            return fail(f"not an {EVENT_TYPE} CloudEvent", "")
        if not isinstance(data, dict):
            return fail("the CloudEvent has no data object", "/data", first_str(item.get("id")))
        body = data.get("messageBody")
        if not isinstance(body, (str, Fault)) or (isinstance(body, str) and not body.strip()):
            kind = "missing or empty" if body is None or isinstance(body, str) else "not a string"
            return fail(f"data.messageBody is {kind}", "/data/messageBody", message_id)
        return Message.of(self.name, message_id, decode_body(body, body_path, ctx.settings.max_body_bytes))
