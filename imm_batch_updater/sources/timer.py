"""Timer trigger (scheduled reconfiguration): the configured `payload` string is the document or array::

{"triggerTime": "2023-12-26T07:49:00Z", "triggerName": "nightly", "payload": "{\"ProjectName\": …}"}
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources.base import Message, SourceFailure


class TimerSource:
    name = "timer"

    def matches(self, event: Any) -> bool:
        return isinstance(event, dict) and "triggerTime" in event and "triggerName" in event

    def messages(self, event: dict[str, Any], ctx: Any) -> list[Message]:
        message_id = f"{event.get('triggerName')}@{event.get('triggerTime')}"
        payload = event.get("payload")
        if not isinstance(payload, str) or not payload.strip():
            text = "the timer payload is empty: set the trigger's payload to an update document (JSON string)"
            failure = SourceFailure(oc.INVALID, "EmptyPayload", text, "/payload")
            return [Message(source=self.name, message_id=message_id, failure=failure)]
        return [Message(source=self.name, message_id=message_id, body=payload.encode("utf-8"))]
