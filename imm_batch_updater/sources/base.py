"""The common form every trigger adapter produces: a list of `Message`s.

Each source module (Mangum style) has one class with `matches(event)` (does this event come from me?) and
`messages(event, ctx)` (turn it into messages). A message carries the raw bytes of one update document or a JSON
array of them; documents are parsed and validated later, in one place (`imm_batch_updater.documents`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SourceFailure:
    """The source could not produce the message body (e.g. the OSS object is missing or unreadable).

    `status` is an outcome status (`invalid`, `rejected`, `failed`); `failed` is retried by the platform.
    """

    status: str
    code: str
    message: str
    path: str = ""  # JSON Pointer into the event, for `invalid`


@dataclass(frozen=True)
class Message:
    """One delivered message: the raw JSON text of a document or of an array of documents."""

    source: str  # "http", "direct", "mns_topic", "mns_queue", "oss", "timer", "async_destination"
    message_id: str | None  # for correlation and de-duplication (MNS MessageId, CloudEvent id, OSS key@etag, ...)
    body: bytes | None = None
    # Already-decoded JSON: used instead of `body` when body is None (a dict handed to the handler), and instead of
    # decoding `body` again when the source decoded it with `documents.decode_json` (a direct invocation).
    parsed: Any = None
    failure: SourceFailure | None = None


class SourceContext(Protocol):
    """What a source may need from the invocation: credentials and settings (OSS reads them)."""

    def oss_reader(self) -> Any: ...


class EventSource(Protocol):
    name: str

    def matches(self, event: Any) -> bool:
        """True when `event` (already JSON-decoded) has this trigger's shape."""
        ...

    def messages(self, event: Any, ctx: SourceContext) -> list[Message]:
        """The messages in the event. Never raises for bad input: a bad record becomes a `failure`."""
        ...
