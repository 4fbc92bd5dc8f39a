"""The result of one update document, and how statuses map to HTTP codes and retries (pinned contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UPDATED = "updated"
DRY_RUN = "dry_run"
INVALID = "invalid"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
REJECTED = "rejected"
THROTTLED = "throttled"
FAILED = "failed"

SUCCESS_STATUSES = frozenset({UPDATED, DRY_RUN})
# Not final: the platform (FC async retry, EventBridge retry) must deliver the message again.
RETRIABLE_STATUSES = frozenset({THROTTLED, FAILED})

_HTTP = {
    UPDATED: 200,
    DRY_RUN: 200,
    INVALID: 400,
    NOT_FOUND: 404,
    CONFLICT: 409,
    REJECTED: 422,
    THROTTLED: 429,
    FAILED: 502,
}


@dataclass
class ErrorInfo:
    code: str
    message: str
    details: list[dict[str, str]] | None = None  # [{"path": JSON Pointer, "message": ...}] for `invalid`

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


@dataclass
class Outcome:
    """What happened to one update document."""

    status: str
    project: str | None = None
    batch_id: str | None = None
    error: ErrorInfo | None = None
    resumed: bool | None = None  # set on every `updated`
    diff: dict[str, dict[str, Any]] | None = None  # `dry_run` (and `conflict` of a dry run)
    state: str | None = None  # the batch State seen by the precheck, when known
    attempts: int = 0  # IMM calls made for this document
    request_id: str | None = None  # IMM RequestId of the last call, for support tickets
    source: str | None = None
    message_id: str | None = None
    index: int | None = None  # position in a bulk array
    duplicate: bool = False  # a repeat of a message already in this delivery: its first copy's result, not re-applied
    http_status_override: int | None = field(default=None, repr=False)  # 403 for permission refusals

    @property
    def final(self) -> bool:
        return self.status not in RETRIABLE_STATUSES

    @property
    def ok(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def http_status(self) -> int:
        if self.http_status_override is not None:
            return self.http_status_override
        return _HTTP[self.status]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "project": self.project, "batch_id": self.batch_id}
        if self.status == UPDATED:
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
        if self.duplicate:
            out["duplicate"] = True
        out["attempts"] = self.attempts
        return out


def invalid(message: str, details: list[dict[str, str]], code: str = "InvalidDocument", **kw: Any) -> Outcome:
    return Outcome(status=INVALID, error=ErrorInfo(code=code, message=message, details=details), **kw)


def http_status_for(outcomes: list[Outcome]) -> int:
    """200 when all succeeded, the common status when all failed the same way, 207 otherwise (pinned)."""
    if not outcomes:
        return 400
    if all(o.ok for o in outcomes):
        return 200
    codes = {o.http_status for o in outcomes}
    if len(codes) == 1 and not any(o.ok for o in outcomes):
        return codes.pop()
    return 207
