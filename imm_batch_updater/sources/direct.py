"""Direct invocation (`s invoke`, the FC API, another function): the event is the document or an array of them.

Also the fallback for anything no other adapter recognises, so a malformed event still gets a clear `invalid`, and
for MNS topic STREAM messages without attributes, which arrive as their raw body (plain or base64). The event may
also name a config object, `{"Source": "oss://bucket/key"}`, whose documents are applied (`config_object`).
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources._body import from_base64, too_large
from imm_batch_updater.sources.base import Delivery, EventTrigger, Message, NotJsonEvent, SourceFailure
from imm_batch_updater.sources.config_object import resolve_source
from imm_batch_updater.strictjson import Decoded


class DirectSource(EventTrigger):
    name = "direct"
    markers: frozenset[str] = frozenset()  # the fallback: anything

    def matches(self, event: Any) -> bool:
        return True

    def receive(self, event: Decoded | NotJsonEvent, ctx: Context) -> Delivery:
        message_id = ctx.request_id
        limit = ctx.settings.max_body_bytes
        if event.size > limit:
            return Delivery([Message.of(self.name, message_id, too_large(event.size, limit, "the event"))])
        if isinstance(event, NotJsonEvent):
            # A topic STREAM message without attributes, base64-encoded (MNS SDKs may encode topic messages).
            decoded = from_base64(event.raw)
            if decoded is not None:
                return Delivery([Message.of(self.name, message_id, decoded)])
            code = "TooDeep" if event.error.code == "TooDeep" else "NotJson"
            failure = SourceFailure(Status.INVALID, code, f"the event is not a JSON document: {event.error.message}")
            return Delivery([Message.of(self.name, message_id, failure)])
        message = Message.of(self.name, message_id, event)
        if isinstance(event.value, dict) and "Source" in event.value:
            # A config object (`{"Source": "oss://bucket/key"}`) stands for the documents it holds.
            message = resolve_source(message, ctx)
        return Delivery([message])
