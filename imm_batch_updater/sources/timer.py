"""Timer trigger (scheduled reconfiguration): the trigger's configured `payload` string is the document or array::

    {"triggerTime": "2023-12-26T07:49:00Z", "triggerName": "nightly", "payload": "{\"ProjectName\": …}"}

An empty or missing payload is `invalid` with a message saying where to put the document (a timer created
without a payload fires with `""`). Message id: `triggerName@triggerTime`, unique per firing, so FC's retries of
one firing share it. The payload is taken as JSON text, never base64: it is typed into the trigger config.
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
        name, when = event.get("triggerName"), event.get("triggerTime")
        message_id = f"{name}@{when}" if isinstance(name, str) and isinstance(when, str) else None
        payload = event.get("payload")
        if isinstance(payload, str) and payload.strip():
            return [Message(source=self.name, message_id=message_id, body=payload.encode("utf-8"))]
        if payload is None or isinstance(payload, str):
            text = "the timer payload is empty: set the trigger's payload to an update document (a JSON string)"
            code = "EmptyPayload"
        else:
            text = "the timer payload must be a string holding the update document as JSON"
            code = "InvalidEvent"
        failure = SourceFailure(oc.INVALID, code, text, "/payload")
        return [Message(source=self.name, message_id=message_id, failure=failure)]
