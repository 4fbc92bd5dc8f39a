"""MNS topic trigger (`mns_topic`), both notify formats.

JSON format (recommended: self-describing; message attributes are merged at the top level)::

    {"TopicOwner": "1186…", "Message": "{\\"ProjectName\\": …}", "Subscriber": "1186…", "PublishTime": 1550216480040,
     "SubscriptionName": "sub", "MessageMD5": "BA4B…", "TopicName": "updates", "MessageId": "2F5B…",
     "someAttribute": "…"}

STREAM format with attributes: ``{"body": "{\\"ProjectName\\": …}", "attrs": {"Extend": "…"}}``. STREAM without
attributes delivers the raw body, which cannot be told apart from a direct invocation and is handled by
`DirectSource` (one more reason to configure the JSON format).

`Message` / `body` may be base64 of the document (`Base64TopicMessage`); see `_body` for the detection rule.
Message id: `MessageId`; the STREAM format has none, so FC's request id stands in for correlation.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources._body import decode_body
from imm_batch_updater.sources.base import Delivery, EventTrigger, Message, SourceFailure, envelope_failure, first_str
from imm_batch_updater.strictjson import Decoded, Fault


def _is_stream_with_attributes(event: dict[str, Any]) -> bool:
    return set(event) == {"body", "attrs"}


class MnsTopicSource(EventTrigger):
    name = "mns_topic"
    markers = frozenset({"TopicOwner", "body"})  # a dict event without any of these keys is not this source's

    def matches(self, event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        return ("TopicOwner" in event and "Message" in event) or _is_stream_with_attributes(event)

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        value = event.value
        if _is_stream_with_attributes(value):
            message_id, text, path = ctx.request_id, value["body"], "/body"
        else:
            message_id, text, path = first_str(value.get("MessageId")), value.get("Message"), "/Message"
        around = tuple(f for f in event.faults if f[0] != path)
        if around:  # the body is fine, the event around it is not (a duplicate key, an attribute that is not text)
            return Delivery([Message.of(self.name, message_id, envelope_failure(around, "the MNS event"))])
        if not isinstance(text, (str, Fault)) or (isinstance(text, str) and not text.strip()):
            kind = "missing or empty" if text is None or isinstance(text, str) else "not a string"
            failure = SourceFailure(Status.INVALID, "InvalidEvent", f"the MNS message body is {kind}", path)
            return Delivery([Message.of(self.name, message_id, failure)])
        body = decode_body(text, path, ctx.settings.max_body_bytes)
        return Delivery([Message.of(self.name, message_id, body)])
