"""MNS queue trigger through EventBridge (`eventbridge`, `eventSourceType: MNS`).

One CloudEvent per invocation, or a JSON array of them with batch push (`runOptions.mode: event-streaming`)::

    {"id": "c2g7…", "source": "MNS-fn-trigger", "specversion": "1.0", "type": "mns:Queue:SendMessage",
     "subject": "acs:mns:cn-hangzhou:1649…:queues/updates", "time": "2021-04-08T06:28:17.093Z",
     "data": {"requestId": "606E…", "messageId": "C6DB…", "messageBody": "{\"ProjectName\": …}"}}

Recognised by `type`: `source` differs between samples (`MNS-<function>-<trigger>`, `acs:mns`). `messageBody`
may be base64 (the MNS SDK encodes queue messages by default unless the trigger sets `IsBase64Decode`); see
`_body`. Message id: `data.messageId`, else the CloudEvent `id`. The same message twice in one push (at-least-once
delivery) is applied once; `App.run` drops the later copy by message id.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources._body import body_message
from imm_batch_updater.sources.base import Message, SourceFailure

EVENT_TYPE = "mns:Queue:SendMessage"


def _is_queue_event(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == EVENT_TYPE


def _first_str(*values: Any) -> str | None:
    return next((v for v in values if isinstance(v, str) and v), None)


class MnsQueueSource:
    name = "mns_queue"

    def matches(self, event: Any) -> bool:
        if isinstance(event, list):
            return any(_is_queue_event(item) for item in event)
        return _is_queue_event(event)

    def messages(self, event: Any, ctx: Any) -> list[Message]:
        if isinstance(event, list):  # batch push: pointers are /0, /1, ...
            return [self._one(item, f"/{i}") for i, item in enumerate(event)]
        return [self._one(event, "")]

    def _one(self, item: Any, base: str) -> Message:
        def fail(text: str, where: str, message_id: str | None = None) -> Message:
            failure = SourceFailure(oc.INVALID, "InvalidEvent", text, base + where)
            return Message(source=self.name, message_id=message_id, failure=failure)

        if not _is_queue_event(item):
            return fail(f"not an {EVENT_TYPE} CloudEvent", "")
        data = item.get("data")
        if not isinstance(data, dict):
            return fail("the CloudEvent has no data object", "/data", _first_str(item.get("id")))
        message_id = _first_str(data.get("messageId"), item.get("id"))
        body = data.get("messageBody")
        if not isinstance(body, str) or not body.strip():
            kind = "missing or empty" if body is None or isinstance(body, str) else "not a string"
            return fail(f"data.messageBody is {kind}", "/data/messageBody", message_id)
        return body_message(self.name, message_id, body, f"{base}/data/messageBody")
