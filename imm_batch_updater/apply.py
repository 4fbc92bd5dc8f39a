"""Apply one valid update request to IMM and say what happened.

    GetBatch (precheck, or always for DryRun) -> not_found / conflict / dry_run
    UpdateBatch with only the fields given      -> updated
    ResumeBatch when asked and the batch Failed -> resumed: true

IMM rules (UpdateBatch docs): a batch can be updated only while Ready or Failed, the update keeps the state, and
an incomplete batch does not resume by itself.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import imm
from imm_batch_updater import outcome as oc
from imm_batch_updater.documents import UpdateRequest
from imm_batch_updater.outcome import ErrorInfo, Outcome

UPDATABLE_STATES = frozenset({"Ready", "Failed"})
RESUMABLE_STATES = frozenset({"Suspended", "Failed"})

_STATUS_BY_KIND = {
    imm.NOT_FOUND: oc.NOT_FOUND,
    imm.STATE: oc.CONFLICT,
    imm.THROTTLE: oc.THROTTLED,
    imm.RETRY: oc.FAILED,
    imm.PERMISSION: oc.REJECTED,
    imm.AUTH: oc.REJECTED,
    imm.CLIENT: oc.REJECTED,
}


def _normalise(value: Any) -> Any:
    """Compare what IMM returns with what was asked: drop empty/None members IMM may add or omit."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if v is not None and v != [] and v != ""}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def diff(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Requested fields whose value differs from the current one: {field: {"from": old, "to": new}}.

    Actions are compared on the members an update can set (Name, Parameters): UpdateBatch cannot change
    FastFailPolicy, so its presence is not a difference.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, wanted in changes.items():
        now = current.get(name)
        now_cmp = now
        if name == "Actions" and isinstance(now, list):
            now_cmp = [{k: v for k, v in a.items() if k in ("Name", "Parameters")} for a in now if isinstance(a, dict)]
        if _normalise(now_cmp) != _normalise(wanted):
            out[name] = {"from": now, "to": wanted}
    return out


def _failure(request: UpdateRequest, error: imm.ImmError, attempts: int, **kw: Any) -> Outcome:
    status = _STATUS_BY_KIND.get(error.kind, oc.FAILED)
    result = _base(request, status, attempts, **kw)
    result.error = ErrorInfo(error.code, error.message)
    result.request_id = error.request_id
    if error.kind == imm.PERMISSION or (status == oc.REJECTED and error.http_status == 403):
        result.http_status_override = 403  # IMM refused with 403 (also auth codes IMM sometimes sends as 403)
    return result


def _base(request: UpdateRequest, status: str, attempts: int, **kw: Any) -> Outcome:
    return Outcome(
        status=status,
        project=request.project,
        batch_id=request.batch_id,
        attempts=attempts,
        source=request.source,
        message_id=request.message_id,
        index=request.index,
        **kw,
    )


def apply_update(request: UpdateRequest, gateway: imm.ImmGateway, precheck: bool = True) -> Outcome:
    attempts = 0
    state: str | None = None
    changes_diff: dict[str, dict[str, Any]] | None = None
    if precheck or request.dry_run:
        try:
            batch, n, _ = gateway.get_batch(request.project, request.batch_id)
        except imm.ImmCallFailed as exc:
            return _failure(request, exc.error, exc.attempts)
        attempts += n
        state = batch.get("State")
        if not isinstance(state, str):
            # A 200 answer without the batch (or its State) is not something to decide on: not final, so the
            # platform asks again later.
            result = _base(request, oc.FAILED, attempts)
            result.error = ErrorInfo("InvalidResponse", "IMM's GetBatch answer holds no batch State")
            return result
        if request.dry_run:  # only a dry run reports the diff; a normal precheck needs just the state
            changes_diff = diff(batch, request.changes)
        if state not in UPDATABLE_STATES:
            result = _base(request, oc.CONFLICT, attempts, state=state)
            result.error = ErrorInfo(
                "BatchStateConflict",
                f"the batch is {state}; UpdateBatch is allowed only while it is Ready or Failed"
                + (" (suspend or wait for it to finish first)" if state == "Running" else ""),
            )
            if request.dry_run:
                result.diff = changes_diff
            return result
        if request.dry_run:
            return _base(request, oc.DRY_RUN, attempts, state=state, diff=changes_diff)

    try:
        n, request_id = gateway.update_batch(request.project, request.batch_id, request.changes)
    except imm.ImmCallFailed as exc:
        return _failure(request, exc.error, attempts + exc.attempts, state=state)
    attempts += n

    resumed = False
    # With the precheck we know the state: only a Failed batch can (and needs to) resume. Without it, ask IMM and
    # take a refusal for the state as "nothing to resume".
    if request.resume and (state == "Failed" or state is None):
        try:
            n, request_id = gateway.resume_batch(request.project, request.batch_id)
            attempts += n
            resumed = True
        except imm.ImmCallFailed as exc:
            attempts += exc.attempts
            if exc.error.kind == imm.STATE or (state is None and exc.error.kind == imm.CLIENT):
                resumed = False
            else:
                # The update is done, the resume is not: report the resume's failure. A retriable one makes the
                # platform redeliver; re-applying the update is harmless (UpdateBatch sets, it does not add).
                result = _failure(request, exc.error, attempts, state=state)
                result.error = ErrorInfo(exc.error.code, "updated, but ResumeBatch failed: " + exc.error.message)
                return result
    result = _base(request, oc.UPDATED, attempts, state=state, resumed=resumed)
    result.request_id = request_id
    return result
