"""Turn a delivered message into update requests: split bulk arrays, refuse what can never be sent, validate.

Every input ends as either an `UpdateRequest` (valid, ready to apply) or an `invalid` `Outcome` that names the
JSON Pointer of each problem (relative to the document; a bulk item's result carries its `index`); nothing is
dropped silently. Bodies arrive already decoded (`strictjson`, once, by the source).

    >>> from imm_batch_updater.config import Settings
    >>> from imm_batch_updater.sources.base import Message
    >>> [item] = documents_of(Message("direct", "m1", {"ProjectName": "p", "Id": "b", "Tags": {"k": "v"}}), Settings())
    >>> item.batch_id, item.changes
    ('b', {'Tags': {'k': 'v'}})
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from imm_batch_updater.config import Settings
from imm_batch_updater.outcome import Detail, ErrorInfo, Outcome, Status, invalid
from imm_batch_updater.sinks.base import NOTIFICATION_TYPE_MANY, NOTIFICATION_TYPE_ONE
from imm_batch_updater.sources.async_destination import NOT_AN_UPDATE, NOT_AN_UPDATE_CODE, is_destination_record
from imm_batch_updater.sources.base import Message
from imm_batch_updater.strictjson import Fault
from imm_batch_updater.validation import validate

CHANGE_FIELDS = ("Input", "Actions", "Tags")
# The outcome notifications this function's sinks send (`sinks.base`): one that comes back as an update (the result
# topic subscribed by a trigger, a result function whose sink points back) is refused and never notified again.
NOTIFICATION_CODE = "OutcomeNotification"
NOTIFICATION_TYPES = frozenset({NOTIFICATION_TYPE_ONE, NOTIFICATION_TYPE_MANY})
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # the schema's ProjectName / Id pattern: anything else is not echoed
DEFAULT_MAX_BATCHES = 100


@dataclass(frozen=True)
class Selector:
    """IMM ListBatches' own filters (at least one is set)."""

    state: str | None = None
    tag_selector: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {}
        if self.state is not None:
            out["State"] = self.state
        if self.tag_selector is not None:
            out["TagSelector"] = self.tag_selector
        return out


class UpdateRequest(NamedTuple):
    """One valid update document, for one batch (`batch_id`) or for every batch a `selector` matches (immutable: a
    NamedTuple, which one update builds several times more cheaply than a frozen dataclass; `_replace` makes a
    changed copy)."""

    project: str
    batch_id: str | None
    changes: dict[str, Any]  # the subset of Input / Actions / Tags the document gives, in IMM's wire shape
    resume: bool = False
    dry_run: bool = False
    selector: Selector | None = None
    max_batches: int = DEFAULT_MAX_BATCHES
    source: str | None = None
    message_id: str | None = None
    index: int | None = None  # type: ignore[assignment]  # position in a bulk array (shadows tuple.index)
    current: dict[str, Any] | None = None  # the batch as a selector's listing showed it (no GetBatch needed)
    listing_attempts: int = 0  # the ListBatches calls of the selector, counted in this request's outcome
    read_first: bool = False  # read the batch even with IMM_PRECHECK=false (a selected batch whose view went stale)

    @property
    def key(self) -> tuple[str, str]:
        """The batch this request targets (per-batch ordering); a selector is keyed by its own identity until it
        is expanded into one request per matched batch."""
        return (self.project, self.batch_id if self.batch_id is not None else f"selector:{id(self)}")

    def document(self) -> dict[str, Any]:
        """The single-Id document this request stands for (a fan-out work item; the audit trail)."""
        out: dict[str, Any] = {"ProjectName": self.project, "Id": self.batch_id, **self.changes}
        if self.resume:
            out["Resume"] = True
        if self.dry_run:
            out["DryRun"] = True
        return out

    def fingerprint(self) -> str:
        """Identity of the whole document, used to apply exact duplicates in one delivery only once."""
        body = {"p": self.project, "i": self.batch_id, "c": self.changes, "r": self.resume, "d": self.dry_run}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


Item = UpdateRequest | Outcome


def documents_of(message: Message, settings: Settings) -> list[Item]:
    """The update requests (or invalid outcomes) in one message, in delivery order."""
    source, message_id = message.source, message.message_id
    if message.failure is not None:
        f = message.failure
        details = (Detail(f.path, f.message),) if f.status is Status.INVALID else None
        error = ErrorInfo(f.code, f.message, details)
        return [Outcome(f.status, error=error, source=source, message_id=message_id)]
    document, faults = message.document, message.faults
    if type(document) is list:
        if not document:
            text = "an empty array holds no update"
            return [invalid(text, [Detail("", text)], code="EmptyArray", source=source, message_id=message_id)]
        if len(document) > settings.max_documents:
            text = f"at most {settings.max_documents} documents per message (MAX_DOCUMENTS)"
            return [invalid(text, [Detail("", text)], code="TooManyDocuments", source=source, message_id=message_id)]
        return [
            _one(doc, _relative(faults, f"/{i}") if faults else (), settings, i, source, message_id)
            for i, doc in enumerate(document)
        ]
    return [_one(document, faults, settings, None, source, message_id)]


def _relative(faults: tuple[tuple[str, Fault], ...], prefix: str) -> tuple[tuple[str, Fault], ...]:
    """The faults inside `prefix`, with pointers relative to it."""
    return tuple((path[len(prefix) :], f) for path, f in faults if path == prefix or path.startswith(prefix + "/"))


def _one(
    doc: Any,
    faults: tuple[tuple[str, Fault], ...],
    settings: Settings,
    index: int | None,
    source: str | None,
    message_id: str | None,
) -> Item:
    if faults:
        # Never validated or sent: what the value was meant to be is unknowable (a duplicate key) or cannot be
        # encoded for IMM (NaN, a lone surrogate). Final: it will never succeed.
        details = [Detail(path, f"{fault.reason}: refused") for path, fault in faults]
        text = "the document holds values that can never be sent"
        return invalid(text, details, code=faults[0][1].code, source=source, message_id=message_id, **_ids(doc, index))
    if settings.imm_project and isinstance(doc, dict) and "ProjectName" not in doc:
        doc = {"ProjectName": settings.imm_project, **doc}
    problems = validate(doc)
    if problems:
        # Checked only here, off the path of a valid document: a notification never passes the schema (`type`,
        # `data` and `timestamp` are not update fields).
        kind = doc.get("type") if isinstance(doc, dict) else None
        if isinstance(kind, str) and kind in NOTIFICATION_TYPES and isinstance(doc.get("data"), dict):
            text = (
                "an outcome notification of this function is not an update request (its outcome is not notified again)"
            )
            return invalid(
                text, [Detail("/type", text)], code=NOTIFICATION_CODE, source=source, message_id=message_id, index=index
            )
        if is_destination_record(doc):  # e.g. an onFailure destination topic that triggers the function
            return invalid(
                NOT_AN_UPDATE,
                [Detail("", NOT_AN_UPDATE)],
                code=NOT_AN_UPDATE_CODE,
                source=source,
                message_id=message_id,
                index=index,
            )
        if not settings.imm_project:  # say the other way to give it (README "Configuration")
            problems = [_NO_PROJECT if p == _PROJECT_REQUIRED else p for p in problems]
        text = "the update document fails the schema"
        return invalid(text, problems, code="SchemaViolation", source=source, message_id=message_id, **_ids(doc, index))
    selector = doc.get("Selector")
    return UpdateRequest(
        doc["ProjectName"],
        doc.get("Id"),
        {k: doc[k] for k in CHANGE_FIELDS if k in doc},
        doc.get("Resume") is True,
        doc.get("DryRun") is True,
        None if selector is None else Selector(selector.get("State"), selector.get("TagSelector")),
        int(doc.get("MaxBatches", DEFAULT_MAX_BATCHES)),  # JSON Schema's integers include 5.0
        source,
        message_id,
        index,
    )


_PROJECT_REQUIRED = Detail("/ProjectName", "is required")
_NO_PROJECT = Detail("/ProjectName", "is required (or IMM_PROJECT set on the function)")


def _ids(doc: Any, index: int | None) -> dict[str, Any]:
    """What an `invalid` result can still say about its document (only values that look like names)."""
    return {"project": _str_field(doc, "ProjectName"), "batch_id": _str_field(doc, "Id"), "index": index}


def _str_field(doc: Any, name: str) -> str | None:
    value = doc.get(name) if isinstance(doc, dict) else None
    return value if isinstance(value, str) and len(value) <= 128 and _NAME.fullmatch(value) else None
