"""Direct invocation (`s invoke`, the FC API, another function): the event is the document or an array of them.

Also the fallback for anything no other adapter recognises, so a malformed event still gets a clear `invalid`.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.sources import NOT_JSON
from imm_batch_updater.sources._body import from_base64
from imm_batch_updater.sources.base import Message


class DirectSource:
    name = "direct"

    def matches(self, event: Any) -> bool:
        return True

    def messages(self, event: Any, ctx: Any) -> list[Message]:
        raw = getattr(ctx, "raw_event", b"")
        if event is NOT_JSON:
            # An MNS topic STREAM message without attributes arrives as its raw body, and MNS SDKs may send it
            # base64-encoded (DESIGN: "Message/body may be base64 of the JSON document"). Anything else is
            # reported as not JSON, at path "" (the whole document).
            decoded = from_base64(raw)
            if decoded is not None:
                return [Message(source=self.name, message_id=getattr(ctx, "request_id", None), body=decoded)]
        if raw or event is NOT_JSON:
            # The raw bytes go along for the size limit (and for the JSON error, when the event is not JSON); the
            # event was decoded with the documents' strict decoder, so it is not decoded again.
            parsed = None if event is NOT_JSON else event
            return [Message(source=self.name, message_id=getattr(ctx, "request_id", None), body=raw, parsed=parsed)]
        return [Message(source=self.name, message_id=getattr(ctx, "request_id", None), parsed=event)]
