"""MNS queue trigger through EventBridge (`eventbridge`, `eventSourceType: MNS`).

One CloudEvent per invocation, or a JSON array of them with batch push (`runOptions.mode: event-streaming`)::

    {"id": "c2g7…", "source": "MNS-fn-trigger", "specversion": "1.0", "type": "mns:Queue:SendMessage",
     "subject": "acs:mns:cn-hangzhou:1649…:queues/updates", "time": "2021-04-08T06:28:17.093Z",
     "data": {"requestId": "606E…", "messageId": "C6DB…", "messageBody": "{\"ProjectName\": …}"}}

Recognised by `type` (`source` differs between samples). `messageBody` may be base64 (the MNS SDK encodes queue
messages by default unless the trigger sets `IsBase64Decode`). A message id that appears twice in one batch (an
at-least-once redelivery inside the same push) is applied once: the copy is dropped and gets no result of its own.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources._body import body_bytes
from imm_batch_updater.sources.base import Message, SourceFailure

EVENT_TYPE = "mns:Queue:SendMessage"


def _is_queue_event(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == EVENT_TYPE


class MnsQueueSource:
    name = "mns_queue"

    def matches(self, event: Any) -> bool:
        if isinstance(event, list):
            return bool(event) and any(_is_queue_event(item) for item in event)
        return _is_queue_event(event)

    def messages(self, event: Any, ctx: Any) -> list[Message]:
        items = event if isinstance(event, list) else [event]
        prefix = "" if not isinstance(event, list) else None
        out: list[Message] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            base = prefix if prefix is not None else f"/{i}"
            out.extend(self._one(item, base, seen))
        return out

    def _one(self, item: Any, base: str, seen: set[str]) -> list[Message]:
        if not _is_queue_event(item):
            failure = SourceFailure(oc.INVALID, "InvalidEvent", f"not an {EVENT_TYPE} CloudEvent", base)
            return [Message(source=self.name, message_id=None, failure=failure)]
        data = item.get("data") if isinstance(item.get("data"), dict) else {}
        message_id = data.get("messageId") or item.get("id")
        message_id = message_id if isinstance(message_id, str) else None
        if message_id is not None:
            if message_id in seen:
                return []  # the same queue message twice in one push: apply it once
            seen.add(message_id)
        body = data.get("messageBody")
        if not isinstance(body, str) or not body.strip():
            failure = SourceFailure(
                oc.INVALID, "InvalidEvent", "data.messageBody is missing or empty", f"{base}/data/messageBody"
            )
            return [Message(source=self.name, message_id=message_id, failure=failure)]
        return [Message(source=self.name, message_id=message_id, body=body_bytes(body))]
