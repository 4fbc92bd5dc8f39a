"""Apply semantics through handler.handler (direct invocation) against the emulator's IMM state machine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FAILED, PROJECT, READY, RUNNING, examples

TAGS = {"Tags": {"owner": "media-team"}}


def one(result):
    [item] = result["results"]
    return item


def test_update_sends_only_the_given_fields(invoke, emu):
    before = emu.imm.get_batch(PROJECT, READY)
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": READY, "Actions": [{"Name": "video/convert"}]}))
    after = emu.imm.get_batch(PROJECT, READY)
    assert result["status"] == "updated"
    assert after["Actions"][0]["Name"] == "video/convert"
    assert after["Input"] == before["Input"] and after["Tags"] == before["Tags"] and after["State"] == "Ready"


def test_precheck_reads_before_updating(invoke, emu):
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert [c.action for c in emu.calls(service="imm")] == ["GetBatch", "UpdateBatch"]


def test_precheck_off_makes_one_call(invoke, emu, fn_env):
    fn_env.setenv("IMM_PRECHECK", "false")
    assert one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}))["status"] == "updated"
    assert [c.action for c in emu.calls(service="imm")] == ["UpdateBatch"]


def test_not_found_batch_and_project(invoke):
    assert one(invoke.direct({"ProjectName": PROJECT, "Id": "batch-missing", **TAGS}))["status"] == "not_found"
    result = one(invoke.direct({"ProjectName": "no-such-project", "Id": READY, **TAGS}))
    assert result["status"] == "not_found" and result["error"]["code"] == "ResourceNotFound"


def test_running_batch_is_a_conflict_and_untouched(invoke, emu):
    before = emu.imm.get_batch(PROJECT, RUNNING)
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": RUNNING, **TAGS}))
    assert result["status"] == "conflict" and result["state"] == "Running"
    assert emu.imm.get_batch(PROJECT, RUNNING)["Tags"] == before["Tags"]
    assert emu.calls(action="UpdateBatch") == []


@pytest.mark.parametrize("state", ["Suspended", "Succeeded"])
def test_other_non_updatable_states_conflict(invoke, emu, state):
    emu.imm.set_state(PROJECT, READY, state)
    assert one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}))["status"] == "conflict"


@pytest.mark.parametrize("precheck", ["true", "false"])
def test_a_redelivered_resume_finds_the_batch_running_and_is_met_not_a_conflict(invoke, emu, fn_env, precheck):
    """The first delivery updated and resumed a Failed batch, and its answer was lost (a timeout, a crash): the
    platform delivers the document again and the batch is Running. It used to be a final `conflict`, a dead letter
    for a change that was made. It holds every requested value: `updated`, `unchanged`, nothing changed. Without the
    precheck, IMM's refusal for the state is followed by one GetBatch that finds the values held."""
    fn_env.setenv("IMM_PRECHECK", precheck)
    doc = {"ProjectName": PROJECT, "Id": FAILED, **TAGS, "Resume": True}
    first = one(invoke.direct(doc))
    assert (first["status"], first["resumed"]) == ("updated", True)
    assert emu.imm.get_batch(PROJECT, FAILED)["State"] == "Running"
    before = len(emu.calls(action="UpdateBatch")), len(emu.calls(action="ResumeBatch"))
    again = one(invoke.direct(doc))
    assert (again["status"], again.get("unchanged"), again["resumed"]) == ("updated", True, False)
    assert again["state"] == "Running"
    assert "error" not in again and again["diff"] == {}
    refused = 1 if precheck == "false" else 0  # the UpdateBatch IMM refused for the state: nothing was changed
    after = len(emu.calls(action="UpdateBatch")), len(emu.calls(action="ResumeBatch"))
    assert after == (before[0] + refused, before[1])
    changed = {**TAGS["Tags"], "owner": "someone-else"}
    assert one(invoke.direct({**doc, "Tags": changed}))["status"] == "conflict"  # a real change is still refused


def test_without_precheck_the_read_after_a_state_refusal_is_counted_in_attempts(invoke, emu, fn_env):
    """`attempts` is the IMM calls made: the GetBatch that follows IMM's refusal for the state counts, whether it
    finds the values held or not, and whether it succeeds or fails."""
    fn_env.setenv("IMM_PRECHECK", "false")
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": RUNNING, **TAGS}))  # not held: the refusal stands
    assert result["status"] == "conflict"
    assert [c.action for c in emu.calls(service="imm")] == ["UpdateBatch", "GetBatch"]
    assert result["attempts"] == 2
    emu.faults.inject("GetBatch", "error", count=1, status=403, code="Forbidden.RAM", message="No GetBatch.")
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": RUNNING, **TAGS}))  # unreadable: the refusal stands
    assert result["status"] == "conflict" and result["error"]["code"] == "InvalidArgument"
    assert result["attempts"] == 2


def test_without_precheck_a_read_that_fails_for_now_after_a_state_refusal_is_not_a_final_conflict(invoke, emu, fn_env):
    """The refusal for the state is followed by a GetBatch to tell whether the request is met already (the
    redelivery of a Resume document that updated and resumed its batch). When that read fails the way a retry can
    mend (IMM 5xx, throttling, no time left), nothing is known: the answer is that failure, not a final `conflict`
    (a dead letter for a change that was made). The platform delivers it again and the next read tells."""
    fn_env.setenv("IMM_PRECHECK", "false")
    doc = {"ProjectName": PROJECT, "Id": FAILED, **TAGS, "Resume": True}
    assert one(invoke.direct(doc))["resumed"] is True  # the first delivery: updated and resumed, now Running
    emu.faults.inject("GetBatch", "internal", count=None)
    status, body, _ = invoke.post(doc)
    [result] = body["results"]
    assert (status, result["status"], result["error"]["code"]) == (502, "failed", "InternalError")
    assert result["attempts"] == 1 + len(emu.calls(action="GetBatch"))  # the refused UpdateBatch and the reads
    emu.faults.clear()
    again = one(invoke.direct(doc))  # delivered again: the read tells
    assert (again["status"], again.get("unchanged")) == ("updated", True)


def test_without_precheck_a_met_request_is_resumed_when_the_read_finds_the_batch_failed(invoke, emu, fn_env):
    """IMM refused the update for the state (Running), and the GetBatch after it finds the batch Failed already
    (it stopped in between) holding every requested value: the update is met, and `Resume` asks to restart a
    Failed batch, as the precheck would have done on reading it. `updated` with `resumed: false` left it Failed for
    good (a final success nobody delivers again)."""
    fn_env.setenv("IMM_PRECHECK", "false")
    doc = {"ProjectName": PROJECT, "Id": FAILED, **TAGS, "Resume": True}
    assert one(invoke.direct(doc))["resumed"] is True  # updated and resumed: Running, holding the values
    emu.imm.progress("Running", "Failed", after_reads=0, project=PROJECT, batch_id=FAILED)  # fails at the next read
    again = one(invoke.direct(doc))
    emu.imm.clear_progressions()
    assert (again["status"], again.get("unchanged"), again["resumed"]) == ("updated", True, True)
    assert emu.imm.get_batch(PROJECT, FAILED)["State"] == "Running"


def test_without_precheck_a_redelivered_resume_is_met_when_imms_refusal_does_not_name_the_state(invoke, emu, fn_env):
    """IMM's wording of a refusal for the state is not documented: one that does not name it is `rejected`, and so
    was the redelivery of a Resume document that updated and resumed its batch (now Running), the dead letter the
    read after a refusal exists to avoid. After such a refusal too, a batch read in a state that forbids the update
    and holding every value is met; one in a state that allows it was refused for another reason, which stands."""
    fn_env.setenv("IMM_PRECHECK", "false")
    emu.imm.set_wrong_state_error(message="The operation is not allowed.")
    doc = {"ProjectName": PROJECT, "Id": FAILED, **TAGS, "Resume": True}
    assert one(invoke.direct(doc))["resumed"] is True  # Running now
    again = one(invoke.direct(doc))
    assert (again["status"], again.get("unchanged"), again["resumed"], again["state"]) == (
        "updated",
        True,
        False,
        "Running",
    )
    assert one(invoke.direct({**doc, "Tags": {"owner": "someone-else"}}))["status"] == "rejected"  # not held
    assert one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}))["status"] == "updated"
    emu.faults.inject("UpdateBatch", "error", count=1, status=400, code="InvalidParameter", message="Bad Actions.")
    refused = one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}))  # Ready, holding them: not the state
    assert (refused["status"], refused["error"]["code"]) == ("rejected", "InvalidParameter")


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    state=st.sampled_from(["Ready", "Running", "Failed", "Suspended", "Succeeded"]),
    held=st.booleans(),
    dry_run=st.booleans(),
    resume=st.booleans(),
)
def test_the_state_forbids_only_an_update_that_would_change_something(invoke, emu, state, held, dry_run, resume):
    """Over every state: `conflict` exactly when the state forbids the update and the batch does not already hold
    the values (or for a DryRun, which DESIGN pins to `conflict` in such a state, with its diff); a batch that holds
    them is `updated` `unchanged` without a call, and only a Failed batch is resumed."""
    emu.imm.set_state(PROJECT, READY, state)
    current = emu.imm.get_batch(PROJECT, READY)["Tags"]
    tags = dict(current) if held else {**current, "changed": f"{current.get('changed', '')}+"}  # never what it holds
    doc = {"ProjectName": PROJECT, "Id": READY, "Tags": tags, **({"DryRun": True} if dry_run else {})}
    doc.update({"Resume": True} if resume else {})
    updates = len(emu.calls(action="UpdateBatch"))
    result = one(invoke.direct(doc))
    forbidden = state not in ("Ready", "Failed")
    if forbidden and (dry_run or not held):
        assert result["status"] == "conflict" and result["state"] == state
        assert emu.imm.get_batch(PROJECT, READY)["Tags"] == current
    elif dry_run:
        assert result["status"] == "dry_run" and bool(result["diff"]) is not held
    else:
        assert (result["status"], result.get("unchanged", False)) == ("updated", held)
        assert result["resumed"] is (resume and state == "Failed")
        assert len(emu.calls(action="UpdateBatch")) == updates + (0 if held else 1)
        assert emu.imm.get_batch(PROJECT, READY)["Tags"] == tags


def test_resume_after_updating_a_failed_batch(invoke, emu):
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": FAILED, **TAGS, "Resume": True}))
    assert result["status"] == "updated" and result["resumed"] is True
    assert emu.imm.get_batch(PROJECT, FAILED)["State"] == "Running"


def test_resume_is_not_called_for_a_ready_batch(invoke, emu):
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS, "Resume": True}))
    assert result["status"] == "updated" and result["resumed"] is False
    assert emu.calls(action="ResumeBatch") == []


def test_failed_batch_without_resume_stays_failed(invoke, emu):
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": FAILED, **TAGS}))
    assert result["resumed"] is False and emu.imm.get_batch(PROJECT, FAILED)["State"] == "Failed"


def test_dry_run_reports_a_diff_and_changes_nothing(invoke, emu):
    before = emu.imm.get_batch(PROJECT, READY)
    doc = {"ProjectName": PROJECT, "Id": READY, "Tags": {"owner": "x"}, "Input": before["Input"], "DryRun": True}
    result = one(invoke.direct(doc))
    assert result["status"] == "dry_run"
    assert result["diff"] == {"Tags": {"from": before["Tags"], "to": {"owner": "x"}}}  # Input unchanged: not listed
    assert emu.imm.get_batch(PROJECT, READY) == before and emu.calls(action="UpdateBatch") == []


def test_dry_run_on_running_batch_is_conflict_with_diff(invoke):
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": RUNNING, **TAGS, "DryRun": True}))
    assert result["status"] == "conflict" and "Tags" in result["diff"]


def test_dry_run_reads_even_without_precheck(invoke, emu, fn_env):
    fn_env.setenv("IMM_PRECHECK", "false")
    assert one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS, "DryRun": True}))["status"] == "dry_run"
    assert emu.calls(action="UpdateBatch") == []


def test_without_precheck_a_state_refusal_naming_the_state_is_conflict(invoke, fn_env):
    fn_env.setenv("IMM_PRECHECK", "false")
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": RUNNING, **TAGS}))
    assert result["status"] == "conflict" and result["error"]["code"] == "InvalidArgument"


def test_without_precheck_a_refusal_not_naming_the_state_is_rejected(invoke, emu, fn_env):
    fn_env.setenv("IMM_PRECHECK", "false")
    emu.imm.set_wrong_state_error(message="The operation is not allowed.")
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": RUNNING, **TAGS}))
    assert result["status"] == "rejected"


def test_without_precheck_resume_refused_for_state_is_not_an_error(invoke, emu, fn_env):
    fn_env.setenv("IMM_PRECHECK", "false")
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS, "Resume": True}))
    assert result["status"] == "updated" and result["resumed"] is False
    assert len(emu.calls(action="ResumeBatch")) == 1
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": FAILED, **TAGS, "Resume": True}))
    assert result["resumed"] is True


def test_permission_refusal_is_rejected_403(invoke, emu):
    emu.faults.inject(
        "UpdateBatch",
        "error",
        count=1,
        status=403,
        code="Forbidden.RAM",
        message="User not authorized to operate on the specified resource.",
    )
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert status == 403 and body["results"][0]["status"] == "rejected"
    assert body["results"][0]["error"]["code"] == "Forbidden.RAM"


def test_an_auth_refusal_sent_as_403_answers_403(invoke, emu):
    """IMM sometimes sends SignatureDoesNotMatch / InvalidSecurityToken.* with HTTP 403: a refusal with 403."""
    emu.faults.inject("UpdateBatch", "error", count=1, status=403, code="SignatureDoesNotMatch", message="No match.")
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert status == 403 and body["results"][0]["status"] == "rejected"
    emu.faults.inject("UpdateBatch", "error", count=1, status=400, code="SignatureDoesNotMatch", message="No match.")
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert status == 422 and body["results"][0]["status"] == "rejected"


@pytest.mark.parametrize(
    ("message", "names_it"),
    [
        ("The operation UpdateBatch is not allowed when the batch state is Running.", True),
        ("batch is Running, cannot update", True),
        ("Batch status Suspended does not allow this operation", True),
        ("The batch is already Succeeded.", True),
        ("Failed to update: the batch is Failed", True),
        ("Failed to parse the Input field", False),
        ("Validation Failed.", False),
        ("Specified parameter Input.OSS.Prefix Running/ is not valid.", False),
        ("batch state is Failed, resume it first", True),
        ("The batch is in Running state.", True),
        ("The service is ready to take requests", False),
        ("Failed: the parameter Actions is invalid.", False),
        ("The parameter Actions is invalid.", False),
    ],
)
def test_which_refusals_name_the_batch_state(message, names_it):
    from imm_batch_updater.imm import names_state

    assert names_state(message) is names_it


def test_a_get_batch_answer_without_the_batch_is_failed_not_a_conflict(invoke, emu):
    emu.faults.inject("GetBatch", "error", count=10, status=200, code="Odd", message="no batch in this answer")
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, **TAGS})
    [result] = body["results"]
    assert status == 502 and result["status"] == "failed" and result["error"]["code"] == "InvalidResponse"
    assert result["attempts"] == 4 and emu.calls(action="UpdateBatch") == []


def test_one_answer_that_is_not_imms_is_retried(invoke, emu):
    emu.faults.inject("GetBatch", "error", count=1, status=200, code="Odd", message="no batch in this answer")
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert status == 200 and body["results"][0]["attempts"] == 3  # GetBatch twice, then UpdateBatch


def test_other_client_error_is_rejected_422(invoke, emu):
    emu.faults.inject(
        "UpdateBatch", "error", count=1, status=400, code="InvalidArgument", message="The parameter Actions is invalid."
    )
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert status == 422 and body["results"][0]["attempts"] == 2  # GetBatch + one UpdateBatch, no retry


def test_unknown_access_key_is_rejected_and_final(invoke, emu, sts):
    emu.keyring.remove(sts.access_key_id)
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}))  # final: no raise
    assert result["status"] == "rejected" and result["error"]["code"].startswith("InvalidAccessKeyId")


def test_wrong_secret_is_rejected(invoke, emu, sts):
    emu.keyring.add(sts.access_key_id, "another-secret", sts.security_token)
    result = one(invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}))
    assert result["status"] == "rejected" and result["error"]["code"] == "SignatureDoesNotMatch"


def test_same_batch_twice_in_one_delivery_last_wins(invoke, emu):
    docs = [{"ProjectName": PROJECT, "Id": READY, "Tags": {"v": str(i)}} for i in range(5)]
    result = invoke.direct(docs)
    assert [r["status"] for r in result["results"]] == ["updated"] * 5
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"v": "4"}


def test_identical_consecutive_duplicates_are_applied_once(invoke, emu):
    doc = {"ProjectName": PROJECT, "Id": READY, "Tags": {"v": "same"}}
    result = invoke.direct([doc, doc, {**doc, "Tags": {"v": "other"}}, doc])
    assert [r["status"] for r in result["results"]] == ["updated"] * 4
    assert len(emu.calls(action="UpdateBatch")) == 3  # A, (A skipped), B, A
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"v": "same"}


def test_direct_invalid_input_is_final_and_does_not_raise(invoke):
    result = invoke.direct(None, raw=b"\x00\x01 not json")
    assert one(result)["status"] == "invalid"


def test_imm_project_default(invoke, fn_env):
    fn_env.setenv("IMM_PROJECT", PROJECT)
    result = one(invoke.direct({"Id": READY, **TAGS}))
    assert result["status"] == "updated" and result["project"] == PROJECT
