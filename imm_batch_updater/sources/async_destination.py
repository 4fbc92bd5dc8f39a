"""FC async-invocation destination records are not update requests.

If the function is (mis)configured as its own (or another function's) destination it receives::

    {"timestamp": 1600000000000, "requestContext": {"requestId", "functionArn", "condition",
     "approximateInvokeCount"}, "requestPayload": "…", "responseContext": {…}, "responsePayload": "…"}

Applying `requestPayload` again would silently re-run failed work (and could loop), so such a record is answered
with one final `invalid` result and never applied (never as HTTP either, though it has a `requestContext`). The
same record carried as a document (an MNS message, an OSS object, a timer payload, an HTTP body, an item of a bulk
array: an `onFailure` destination that is a topic or queue feeding the function) gets the same answer from
`documents`.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources.base import Delivery, EventTrigger, Message, SourceFailure, first_str
from imm_batch_updater.strictjson import Decoded

NOT_AN_UPDATE_CODE = "NotAnUpdateRequest"
NOT_AN_UPDATE = (
    "an FC async-invocation destination record is not an update request; "
    "send the update document itself (it is not re-applied from requestPayload)"
)


def is_destination_record(event: Any) -> bool:
    """An FC async-destination record. It has a `requestContext` like an HTTP event, so HttpSource asks this too."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("requestContext"), dict)
        and ("requestPayload" in event or "responsePayload" in event)
    )


class AsyncDestinationSource(EventTrigger):
    name = "async_destination"
    markers = frozenset({"requestContext"})  # a dict event without any of these keys is not this source's

    def matches(self, event: Any) -> bool:
        return is_destination_record(event)

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        request_id = first_str(event.value["requestContext"].get("requestId"))
        failure = SourceFailure(Status.INVALID, NOT_AN_UPDATE_CODE, NOT_AN_UPDATE, "")
        return Delivery([Message.of(self.name, request_id, failure)])
