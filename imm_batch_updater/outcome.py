"""The result of one update document (the pinned contract: README "Outcomes"), immutable once made.

    >>> o = Outcome(Status.UPDATED, "demo-project", "batch-1", resumed=False, attempts=1)
    >>> o.final, o.ok, o.to_dict()["status"]
    (True, True, 'updated')
    >>> replace(o, status=Status.FAILED).final
    False

How a status becomes an HTTP code belongs to the HTTP trigger (`sources.http`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

__all__ = ["ErrorInfo", "Outcome", "Status", "invalid", "replace"]


class Status(str, Enum):
    """What happened to one document. A `str`, so it compares and serialises as its value."""

    UPDATED = "updated"
    DRY_RUN = "dry_run"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    THROTTLED = "throttled"
    FAILED = "failed"
    QUEUED = "queued"  # handed to the work queue; a later invocation applies it

    def __str__(self) -> str:
        return self.value

    @property
    def final(self) -> bool:
        """False for throttled/failed: the platform must deliver the message again."""
        return self not in _RETRIABLE

    @property
    def ok(self) -> bool:
        return self in _SUCCESS


_SUCCESS = frozenset({Status.UPDATED, Status.DRY_RUN})
_RETRIABLE = frozenset({Status.THROTTLED, Status.FAILED})
# Each status as a plain str (`Status.value` is a Python-level property: looked up here, it costs one dict read).
VALUES = {status: status.value for status in Status}


@dataclass(frozen=True)
class Detail:
    """One problem of an `invalid` document: where (a JSON Pointer, "" for the whole document) and what rule."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    details: tuple[Detail, ...] | None = None  # every `invalid` has at least one
    permission: bool = False  # IMM refused for permission (the HTTP trigger answers such a `rejected` with 403)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = [d.to_dict() for d in self.details]
        return out


_set = object.__setattr__


@dataclass(frozen=True, init=False)
class Outcome:
    """What happened to one update document (or to one batch a selector matched)."""

    status: Status
    project: str | None = None
    batch_id: str | None = None
    error: ErrorInfo | None = None
    resumed: bool | None = None  # set on every `updated`
    diff: dict[str, dict[str, Any]] | None = None  # requested fields that differ: {field: {"from", "to"}}
    state: str | None = None  # the batch State read before the update, when it was read
    attempts: int = 0  # IMM calls made for this document
    request_id: str | None = None  # IMM's RequestId of the last call, for support tickets
    source: str | None = None
    message_id: str | None = None
    index: int | None = None  # position in a bulk array
    duplicate: bool = False  # a repeat of a message already in this delivery: the first copy's result
    queue: str | None = None  # the work queue a `queued` document went to
    unchanged: bool = False  # `updated` without an UpdateBatch call: the batch was read to hold the values already

    def __init__(
        self,
        status: Status,
        project: str | None = None,
        batch_id: str | None = None,
        error: ErrorInfo | None = None,
        resumed: bool | None = None,
        diff: dict[str, dict[str, Any]] | None = None,
        state: str | None = None,
        attempts: int = 0,
        request_id: str | None = None,
        source: str | None = None,
        message_id: str | None = None,
        index: int | None = None,
        duplicate: bool = False,
        queue: str | None = None,
        unchanged: bool = False,
    ) -> None:
        # The dataclass's own __init__ of a frozen class sets each of the 15 fields with object.__setattr__; one
        # update makes at least one Outcome, so its fields go in as one dict (about 3 us less between two IMM
        # calls: bench/README.md). Same fields, same defaults: tests/function/test_outcome.py checks it.
        _set(
            self,
            "__dict__",
            {
                "status": status,
                "project": project,
                "batch_id": batch_id,
                "error": error,
                "resumed": resumed,
                "diff": diff,
                "state": state,
                "attempts": attempts,
                "request_id": request_id,
                "source": source,
                "message_id": message_id,
                "index": index,
                "duplicate": duplicate,
                "queue": queue,
                "unchanged": unchanged,
            },
        )

    @property
    def final(self) -> bool:
        return self.status not in _RETRIABLE  # Status.final, without a second property call

    @property
    def ok(self) -> bool:
        return self.status in _SUCCESS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": VALUES[self.status], "project": self.project, "batch_id": self.batch_id}
        if self.status is Status.UPDATED:
            out["resumed"] = bool(self.resumed)
        if self.diff is not None:
            out["diff"] = self.diff
        if self.state is not None:
            out["state"] = self.state
        if self.error is not None:
            out["error"] = self.error.to_dict()
        if self.index is not None:
            out["index"] = self.index
        if self.message_id is not None:
            out["message_id"] = self.message_id
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.queue is not None:
            out["queue"] = self.queue
        if self.duplicate:
            out["duplicate"] = True
        if self.unchanged:
            out["unchanged"] = True
        out["attempts"] = self.attempts
        return out


def invalid(message: str, details: list[Detail], code: str = "InvalidDocument", **fields: Any) -> Outcome:
    """An `invalid` outcome; `details` must not be empty (the contract: every `invalid` lists its problems)."""
    if not details:
        details = [Detail("", message)]
    return Outcome(Status.INVALID, error=ErrorInfo(code, message, tuple(details)), **fields)
