"""Apply one valid single-batch update request to IMM and say what happened.

    read the batch (GetBatch precheck, or a selector's listing)  -> not_found / conflict / dry_run
                                                                     (a batch holding every value: updated, unchanged)
    UpdateBatch with only the fields given                        -> updated (with `diff` when the batch was read)
    ResumeBatch when asked and the batch Failed                   -> resumed: true

IMM rules (UpdateBatch docs): a batch can be updated only while Ready or Failed, the update keeps the state, and
an incomplete batch does not resume by itself (ResumeBatch is allowed from Suspended or Failed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from imm_batch_updater.documents import CHANGE_FIELDS, UpdateRequest
from imm_batch_updater.imm import ImmClient, ImmError, Kind
from imm_batch_updater.outcome import ErrorInfo, Outcome, Status
from imm_batch_updater.retry import attempts_of

UPDATABLE_STATES = frozenset({"Ready", "Failed"})
# UpdateBatch refusals that may be for the batch state: one naming it, and any other 4xx (IMM's wording is not
# documented). With IMM_PRECHECK=false such a refusal is followed by one GetBatch (`_met_already`).
_MAYBE_STATE = frozenset({Kind.STATE, Kind.CLIENT})
_OSS_MEMBERS = ("Bucket", "Prefix", "MatchExpressions")

_STATUS_BY_KIND = {
    Kind.NOT_FOUND: Status.NOT_FOUND,
    Kind.STATE: Status.CONFLICT,
    Kind.THROTTLE: Status.THROTTLED,
    Kind.RETRY: Status.FAILED,
    Kind.ANSWER: Status.FAILED,
    Kind.TOKEN_EXPIRED: Status.FAILED,  # fetched again and still expired: the platform redelivers with new keys
    Kind.PERMISSION: Status.REJECTED,
    Kind.AUTH: Status.REJECTED,
    Kind.CLIENT: Status.REJECTED,
    Kind.LOCAL: Status.REJECTED,  # could not be built or encoded here: final (sending it again fails the same way)
}


def current_values(batch: dict[str, Any], fields: Iterable[str] = CHANGE_FIELDS) -> dict[str, Any]:
    """The batch's Input, Actions and Tags (or only `fields` of them) as an update document would write them (IMM
    adds members an update cannot set, such as FastFailPolicy, and may drop empty ones), so that a `from` value
    can be sent back as is."""
    out: dict[str, Any] = {}
    for name in fields:
        value = batch.get(name)
        if name == "Input":
            oss = value.get("OSS") if isinstance(value, dict) else None
            if isinstance(oss, dict):
                out[name] = {"OSS": {k: oss[k] for k in _OSS_MEMBERS if oss.get(k) not in (None, "", [])}}
        elif name == "Actions":
            if isinstance(value, list):
                out[name] = [
                    {k: a[k] for k in ("Name", "Parameters") if a.get(k) not in (None, [])}
                    for a in value
                    if isinstance(a, dict)
                ]
        elif name == "Tags":
            out[name] = value if isinstance(value, dict) else None
    return out


def diff(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Requested fields whose value differs from the current one: {field: {"from": old, "to": new}}.

    `current` is the batch as IMM returned it; its values are first reduced to what an update can set
    (`current_values`), which is also what `from` reports, so a result can be turned back into the document that
    reverts it. A field the batch does not have is `from: null`.
    """
    now = current_values(current, changes)
    out: dict[str, dict[str, Any]] = {}
    for name, wanted in changes.items():
        before = now.get(name)
        # Tags are compared as they are, so values that are not `==` always differ (the usual case: no
        # normalising); `==` ones may still differ (`true` is not `1`). Input and Actions drop empty members first.
        if (name == "Tags" and before != wanted) or _normalise(before, name) != _normalise(wanted, name):
            out[name] = {"from": before, "to": wanted}
    return out


def holds(current: dict[str, Any], changes: dict[str, Any]) -> bool:
    """Does the batch, exactly as IMM sent it, already hold every requested value? (Stricter than `diff`, which
    compares only what an update can set: a member IMM added, such as FastFailPolicy, means "send it". So a batch
    that holds the values has an empty diff, and one with a diff does not hold them:
    tests/reliability/test_properties.py checks it.)"""
    return all(_normalise(current.get(name), name) == _normalise(value, name) for name, value in changes.items())


def _normalise(value: Any, field: str | None = None) -> Any:
    """Compare what IMM returns with what was asked: drop empty/None members IMM may add or omit (in Input and
    Actions; a tag's value is the sender's, and `{"a": ""}` is not `{}`). A boolean is never equal to a number
    (Python's `True == 1` is not JSON's: `{"flag": true}` is not `{"flag": 1}`)."""
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, dict):
        if field == "Tags":
            return {k: _normalise(v, field) for k, v in value.items()}
        return {k: _normalise(v) for k, v in value.items() if v is not None and v != [] and v != ""}
    if isinstance(value, list):
        return [_normalise(v, field) for v in value]
    return value


def _outcome(
    request: UpdateRequest,
    status: Status,
    attempts: int,
    *,
    error: ErrorInfo | None = None,
    resumed: bool | None = None,
    diff: dict[str, dict[str, Any]] | None = None,
    state: str | None = None,
    request_id: str | None = None,
    unchanged: bool = False,
) -> Outcome:
    # Every field given, in Outcome's order: one update makes one of these, and calling a Python class with keywords
    # packs them into a dict first (CPython's type call has no fast path for them), about 0.7 us between two IMM
    # calls; packing and unpacking **fields was a third of its cost before that (bench/README.md).
    return Outcome(
        status,
        request.project,  # project
        request.batch_id,  # batch_id
        error,
        resumed,
        diff,
        state,
        attempts,
        request_id,
        request.source,  # source
        request.message_id,  # message_id
        request.index,  # index
        False,  # duplicate
        None,  # queue
        unchanged,
    )


def failure(request: UpdateRequest, error: ImmError, attempts: int, prefix: str = "", **fields: Any) -> Outcome:
    status = _STATUS_BY_KIND.get(error.kind, Status.FAILED)
    # 403 for IMM's permission refusals, and for the auth codes IMM sometimes sends with 403 (the pinned
    # contract: such a `rejected` answers 403).
    permission = status is Status.REJECTED and (error.kind is Kind.PERMISSION or error.http_status == 403)
    info = ErrorInfo(error.code, prefix + error.message, permission=permission)
    return _outcome(request, status, attempts, error=info, request_id=error.request_id, **fields)


def _by_reading(
    request: UpdateRequest, current: dict[str, Any], attempts: int
) -> tuple[Outcome | None, str | None, dict[str, dict[str, Any]], bool]:
    """What the batch as read (`current`: a GetBatch answer's or a selector's listing's) decides on its own:
    (the outcome when no IMM call is needed, else None; the batch State; the diff; whether the batch holds every
    requested value). The same rules for a batch read by the precheck and one a selector listed.

    - the state forbids the update (not Ready or Failed) and the batch does not hold the values, or a DryRun there:
      `conflict` (a DryRun's with its diff, as DESIGN pins);
    - a DryRun: `dry_run` with the diff;
    - the batch holds every value (in any state: what a redelivery finds once the first delivery updated and resumed
      it) and there is nothing to resume (no `Resume`, or the batch is not Failed): `updated`, `unchanged`.
    """
    state = current.get("State")
    changes_diff = diff(current, request.changes)
    # A batch read to already hold every requested value exactly is not sent again: a redelivered selection then
    # gets further each time instead of redoing its first batches (and a plain retry costs one call less).
    unchanged = not changes_diff and holds(current, request.changes)
    if state not in UPDATABLE_STATES and (request.dry_run or not unchanged):
        hint = " (suspend or wait for it to finish first)" if state == "Running" else ""
        error = ErrorInfo(
            "BatchStateConflict", f"the batch is {state}; UpdateBatch is allowed only while it is Ready or Failed{hint}"
        )
        diff_shown = changes_diff if request.dry_run else None
        return _outcome(request, Status.CONFLICT, attempts, state=state, error=error, diff=diff_shown), state, {}, False
    if request.dry_run:
        return _outcome(request, Status.DRY_RUN, attempts, state=state, diff=changes_diff), state, changes_diff, False
    if unchanged and not (request.resume and state == "Failed"):
        met = _outcome(request, Status.UPDATED, attempts, state=state, resumed=False, diff=changes_diff, unchanged=True)
        return met, state, changes_diff, True
    return None, state, changes_diff, unchanged


def apply_update(request: UpdateRequest, imm: ImmClient, precheck: bool = True) -> Outcome:
    """The outcome of applying `request` (one batch). IMM errors become outcomes; other exceptions propagate."""
    assert request.batch_id is not None, "selectors are expanded before they are applied"
    attempts = request.listing_attempts
    state: str | None = None
    changes_diff: dict[str, dict[str, Any]] | None = None

    current = request.current
    if current is None and (precheck or request.dry_run or request.read_first):
        try:
            answer = imm.get_batch(request.project, request.batch_id)
        except ImmError as exc:  # a selection's first batch read again: its ListBatches calls count too
            return failure(request, exc, attempts + attempts_of(exc))
        attempts += answer.attempts
        current = answer.batch or {}
    unchanged = False
    if current is not None:
        decided, state, changes_diff, unchanged = _by_reading(request, current, attempts)
        if decided is not None:
            return decided

    request_id = None
    if not unchanged:
        try:
            answer = imm.update_batch(request.project, request.batch_id, request.changes)
        except ImmError as exc:
            attempts += attempts_of(exc)
            if exc.kind not in _MAYBE_STATE or current is not None:
                return failure(request, exc, attempts, state=state)
            try:  # IMM_PRECHECK=false: the refusal is the first word on the state
                met, read_attempts = _met_already(request, imm, named=exc.kind is Kind.STATE)
            except ImmError as unread:  # nothing known yet: not final, so the platform delivers it again
                return failure(request, unread, attempts + attempts_of(unread), _UNREAD)
            attempts += read_attempts  # the GetBatch's calls count whatever it found (or failed to)
            if met is None:
                return failure(request, exc, attempts, state=state)
            # Met: nothing to send. The read told the state, so `Resume` restarts the batch when it is Failed (it
            # may have stopped since the refusal), as after a precheck, and only then.
            state, changes_diff, unchanged = met, {}, True
        else:
            attempts += answer.attempts
            request_id = answer.request_id

    resumed = False
    # With a read we know the state: only a Failed batch can (and needs to) resume. Without it, ask IMM and take a
    # refusal for the state as "nothing to resume".
    if request.resume and (state == "Failed" or state is None):
        try:
            resume = imm.resume_batch(request.project, request.batch_id)
            attempts += resume.attempts
            request_id = resume.request_id
            resumed = True
        except ImmError as exc:
            attempts += attempts_of(exc)
            if not (exc.kind is Kind.STATE or (state is None and exc.kind is Kind.CLIENT)):
                # The update is done, the resume is not: report the resume's failure. A retriable one makes the
                # platform redeliver; re-applying the update is harmless (UpdateBatch sets, it does not add).
                return failure(
                    request, exc, attempts, "updated, but ResumeBatch failed: ", state=state, diff=changes_diff
                )
    return _outcome(
        request,
        Status.UPDATED,
        attempts,
        state=state,
        resumed=resumed,
        request_id=request_id,
        diff=changes_diff,
        unchanged=unchanged,
    )


_UNREAD = (
    "IMM refused the update for the batch state, and the batch could not be read to tell whether it holds the values "
    "already: "
)


def _met_already(request: UpdateRequest, imm: ImmClient, named: bool) -> tuple[str | None, int]:
    """(state, attempts): the batch's state when, read after IMM refused the update for its state, it holds every
    requested value (what a redelivery finds once the first delivery updated and resumed it): the request is met.
    None when it does not, or cannot be read for good (no permission: the refusal then stands). `attempts`: the
    GetBatch calls made, either way. A read that failed the way a retry can mend (`throttled`, `failed`: IMM 5xx,
    throttling, no time left) raises its ImmError: a final `conflict` then would be a dead letter for what may be
    a change already made.

    `named`: IMM's refusal named the state. One that did not (IMM's wording is undocumented; Kind.CLIENT) may be
    for the state or for anything else: it is met only when the batch is read in a state that forbids the update,
    and it stands when the read fails in any way (most such refusals are a bad argument: never retried for a read)."""
    assert request.batch_id is not None
    try:
        answer = imm.get_batch(request.project, request.batch_id)
    except ImmError as exc:
        if named and not _STATUS_BY_KIND.get(exc.kind, Status.FAILED).final:
            raise
        return None, attempts_of(exc)
    batch = answer.batch or {}
    if not holds(batch, request.changes):  # holding every value implies an empty diff (`holds`)
        return None, answer.attempts
    if not named and batch.get("State") in UPDATABLE_STATES:  # the refusal was not for the state
        return None, answer.attempts
    return batch.get("State") or "", answer.attempts


def unapplied(request: UpdateRequest, status: Status, code: str, message: str) -> Outcome:
    """An outcome for a request that was never sent (configuration missing, a bug on this side)."""
    return _outcome(request, status, 0, error=ErrorInfo(code, message))
