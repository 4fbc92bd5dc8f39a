"""MNS topic trigger (`mns_topic`), both notify formats.

JSON format (recommended; message attributes are merged at the top level)::

    {"TopicOwner": "1186…", "Message": "{\"ProjectName\": …}", "Subscriber": "1186…", "PublishTime": 1550216480040,
     "SubscriptionName": "sub", "MessageMD5": "BA4B…", "TopicName": "updates", "MessageId": "2F5B…"}

STREAM format with attributes: ``{"body": "…", "attrs": {…}}``. STREAM without attributes delivers the raw body,
which is indistinguishable from a direct invocation and is handled by `DirectSource`.
`Message` / `body` may be base64 of the document (`Base64TopicMessage`), see `_body`.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources._body import body_bytes
from imm_batch_updater.sources.base import Message, SourceFailure


class MnsTopicSource:
    name = "mns_topic"

    def matches(self, event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        if "TopicOwner" in event and "Message" in event:
            return True
        return set(event) == {"body", "attrs"}

    def messages(self, event: dict[str, Any], ctx: Any) -> list[Message]:
        if "TopicOwner" in event:
            message_id = event.get("MessageId") if isinstance(event.get("MessageId"), str) else None
            text, path = event.get("Message"), "/Message"
        else:
            message_id, text, path = None, event.get("body"), "/body"
        if not isinstance(text, str) or not text.strip():
            failure = SourceFailure(oc.INVALID, "InvalidEvent", "the MNS message body is missing or empty", path)
            return [Message(source=self.name, message_id=message_id, failure=failure)]
        return [Message(source=self.name, message_id=message_id, body=body_bytes(text))]
