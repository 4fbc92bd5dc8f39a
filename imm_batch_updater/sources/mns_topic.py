"""MNS topic trigger (`mns_topic`), both notify formats.

JSON format (recommended: self-describing; message attributes are merged at the top level)::

    {"TopicOwner": "1186…", "Message": "{\"ProjectName\": …}", "Subscriber": "1186…", "PublishTime": 1550216480040,
     "SubscriptionName": "sub", "MessageMD5": "BA4B…", "TopicName": "updates", "MessageId": "2F5B…",
     "someAttribute": "…"}

STREAM format with attributes: ``{"body": "{\"ProjectName\": …}", "attrs": {"Extend": "…"}}``. STREAM without
attributes delivers the raw body, which cannot be told apart from a direct invocation and is handled by
`DirectSource` (one more reason to configure the JSON format).

`Message` / `body` may be base64 of the document (`Base64TopicMessage`); see `_body` for the detection rule.
Message id: `MessageId`; the STREAM format has none, so FC's request id stands in for correlation.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources._body import body_message
from imm_batch_updater.sources.base import Message, SourceFailure


def _is_stream_with_attributes(event: dict[str, Any]) -> bool:
    return set(event) == {"body", "attrs"}


class MnsTopicSource:
    name = "mns_topic"

    def matches(self, event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        return ("TopicOwner" in event and "Message" in event) or _is_stream_with_attributes(event)

    def messages(self, event: dict[str, Any], ctx: Any) -> list[Message]:
        if _is_stream_with_attributes(event):
            message_id, text, path = getattr(ctx, "request_id", None), event["body"], "/body"
        else:
            mid = event.get("MessageId")
            message_id, text, path = (mid if isinstance(mid, str) and mid else None), event.get("Message"), "/Message"
        if not isinstance(text, str) or not text.strip():
            kind = "missing or empty" if text is None or isinstance(text, str) else "not a string"
            failure = SourceFailure(oc.INVALID, "InvalidEvent", f"the MNS message body is {kind}", path)
            return [Message(source=self.name, message_id=message_id, failure=failure)]
        return [body_message(self.name, message_id, text, path)]
