"""What every trigger adapter shares (Mangum style: one small class per event source).

A source recognises its event (`matches`), turns it into the common form (`receive`: a `Delivery` of `Message`s,
each carrying one decoded body) and shapes the function's answer from the outcomes (`answer`). It never calls
back into the application: the app runs decode -> detect -> receive -> documents -> apply -> report -> answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Outcome, Status
from imm_batch_updater.strictjson import Decoded, Fault, NotJson


@dataclass(frozen=True)
class NotJsonEvent:
    """An event whose bytes are not JSON (only the direct-invocation source takes it)."""

    raw: bytes
    error: NotJson

    @property
    def size(self) -> int:
        return len(self.raw)


class DeliveryIncomplete(Exception):
    """Raised by event triggers after processing when some item is not final, so the platform retries the
    delivery (FC's async retry, EventBridge's retry strategy). Final items are re-applied harmlessly."""


@dataclass(frozen=True)
class SourceFailure:
    """The source could not produce the message's body (the OSS object is missing, the envelope is malformed).

    `status` is a final status (`invalid`, `rejected`) or `failed` (the platform retries); `path` is a JSON Pointer
    for `invalid`: "" when the body as a whole or the envelope around it is at fault.
    """

    status: Status
    code: str
    message: str
    path: str = ""


# The longest message id a result, a log line, a notification or a dedupe key carries (characters). An ordinary id
# stays as it is: an MNS MessageId or a CloudEvent id (tens of characters), a UUID, a webhook-id, and an OSS id
# `oss://bucket/key@eTag` with the longest bucket (63) and key (1,023) OSS allows and a multipart eTag (~40) is about
# 1,140. Longer ids can only come from a sender's (or a forger's) event: `bounded_id` cuts them.
MAX_MESSAGE_ID = 1280
_DIGEST_MARK = "\u2026sha256:"  # "…sha256:" then 64 hex digits of the whole id
_KEEP = MAX_MESSAGE_ID - len(_DIGEST_MARK) - 64


def bounded_id(value: str | None) -> str | None:
    """`value` when it is at most MAX_MESSAGE_ID characters long; else its first characters, "…sha256:" and the
    SHA-256 of the whole id (hex), MAX_MESSAGE_ID characters in all. An id taken from an event never makes an answer
    grow with the input, and stays what it is for: the same id gives the same bounded id (redeliveries still match
    and are de-duplicated), two ids differing anywhere give different ones, and the readable start is still there
    to search logs for. Applying it twice changes nothing.

    >>> bounded_id("C6DB2F5B-1")
    'C6DB2F5B-1'
    >>> long = bounded_id("oss://b/k@" + "e" * 5000)
    >>> len(long), long[:10], long[-72:-64], long == bounded_id(long)
    (1280, 'oss://b/k@', '…sha256:', True)
    """
    if value is None or len(value) <= MAX_MESSAGE_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return value[:_KEEP] + _DIGEST_MARK + digest


class Message(NamedTuple):
    """One delivered message: its decoded body (one update document or a JSON array of them), or its failure.

    `faults` lists the values in `document` that can never be sent (strictjson), with pointers relative to it.
    Sources make messages with `of`, which bounds `message_id` (at most MAX_MESSAGE_ID characters).
    """

    source: str  # "http", "direct", "mns_topic", "mns_queue", "oss", "oss_eventbridge", "timer", ...
    message_id: str | None  # for correlation and de-duplication (MNS MessageId, CloudEvent id, OSS key@etag, ...)
    document: Any = None
    faults: tuple[tuple[str, Fault], ...] = ()
    failure: SourceFailure | None = None

    @classmethod
    def of(cls, source: str, message_id: str | None, body: Decoded | SourceFailure) -> Message:
        """The message, its id bounded (`bounded_id`): every source makes its messages here, so no id taken from an
        event reaches a result, a log line, a notification or the de-duplication unbounded."""
        message_id = bounded_id(message_id)
        if isinstance(body, SourceFailure):
            return cls(source, message_id, failure=body)
        return cls(source, message_id, body.value, body.faults)


class Delivery(NamedTuple):
    """What a source made of one event: the messages to apply, or an answer decided without applying anything
    (an HTTP route, an unauthenticated request, a replay). `state` is the source's own, kept for `answer`."""

    messages: tuple[Message, ...] | list[Message] = ()
    answer: Any = None
    state: Any = None


class EventSource(Protocol):
    name: str
    markers: frozenset[str]  # top-level keys one of which every dict event of this source has

    def matches(self, event: Any) -> bool:
        """True when `event` (the decoded event value) has this trigger's shape."""
        ...

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        """The messages in the event. Never raises for bad input: a bad record becomes a message `failure`."""
        ...

    def answer(self, delivery: Delivery, outcomes: list[Outcome], ctx: Context) -> Any:
        """The function's return value for this event."""
        ...


class EventTrigger:
    """Base of the event (non-HTTP) triggers: their answer is `{"results": [...]}`, raised as DeliveryIncomplete
    when some outcome is not final (README "Delivery semantics")."""

    name = "event"

    def answer(self, delivery: Delivery, outcomes: list[Outcome], ctx: Context) -> Any:
        results, not_final = [], []
        for o in outcomes:
            results.append(o.to_dict())
            if not o.final:
                not_final.append(o)
        if not_final:
            raise incomplete(not_final, len(outcomes), "delivery")
        return {"results": results}


def incomplete(not_final: list[Outcome], total: int, what: str) -> DeliveryIncomplete:
    """The exception that makes the platform deliver `what` (the delivery, the asynchronous request) again."""
    statuses = ", ".join(sorted({o.status.value for o in not_final}))
    return DeliveryIncomplete(
        f"{len(not_final)} of {total} update(s) not final ({statuses}); the platform will retry the {what}"
    )


def envelope_failure(faults: tuple[tuple[str, Fault], ...], what: str = "the event") -> SourceFailure:
    """A message whose envelope holds a value that can never be sent: `invalid` at "" (README "Reliability")."""
    where, fault = faults[0]
    return SourceFailure(Status.INVALID, fault.code, f"{what} holds {fault.reason} at {where or 'its top level'}")


def first_str(*values: Any) -> str | None:
    """The first non-empty string among `values` (ids in events may be missing, empty or of another type)."""
    return next((v for v in values if isinstance(v, str) and v), None)


def event_or_batch(event: Any, is_item: Callable[[Any], bool]) -> bool:
    """Whether `event` is one CloudEvent `is_item` recognises, or an array (EventBridge's batch push) holding one."""
    if isinstance(event, list):
        return any(is_item(item) for item in event)
    return is_item(event)
