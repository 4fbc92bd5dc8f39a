"""Fan-out over the work queue and IMM's quota (issue #13, parts 2, 3 and 6), end to end on one machine: the
function sends the work documents to the emulator's MNS queue with the MNS SDK (signed with the STS key), the
local pump (`devtools.pump`, the twin of the EventBridge batch-push trigger) delivers them back to
`handler.handler`, and the IMM SDK applies them."""

from __future__ import annotations

import json

import pytest

from devtools.pump import Key, Pump
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import fc_context
from tests.fleet.selections import ACTIONS, FLEET, QUEUE, selector_doc


def bodies(emu):
    import base64

    return [json.loads(base64.b64decode(m["body"])) for m in emu.mns.queue_messages(QUEUE)]


def test_a_large_selection_is_queued_then_applied_by_the_queue_trigger(invoke, emu, work_queue, sts):
    ids = emu.imm.create_batches(FLEET, 320, state="Failed", tags={"tier": "gold"})
    status, body, _ = invoke.post(selector_doc(MaxBatches=1000, Resume=True))
    results = body["results"]
    assert status == 202 and [r["batch_id"] for r in results] == ids
    assert {(r["status"], r["queue"]) for r in results} == {("queued", QUEUE)}
    assert emu.calls(action="UpdateBatch") == []  # nothing applied by this invocation
    # One single-Id document per batch, in JSON arrays of at most 50, sent with BatchSendMessage.
    sent = bodies(emu)
    assert [len(b) for b in sent] == [50] * 6 + [20]
    documents = [d for b in sent for d in b]
    assert [d["Id"] for d in documents] == ids
    assert all(d == {"ProjectName": FLEET, "Id": d["Id"], "Actions": ACTIONS, "Resume": True} for d in documents)
    # BatchSendMessage: at most 16 messages and 64 KB (after base64) per request.
    requests = emu.calls(action="BatchSendMessage")
    assert 1 <= len(requests) < 7 and not emu.calls(action="SendMessage")
    assert all(len(r.body) < 70_000 for r in requests)

    pump = Pump(emu.url, QUEUE, Key(sts.access_key_id, sts.access_key_secret, sts.security_token), _handler(invoke))
    assert pump.drain() == 7 and pump.failed_deliveries == 0
    assert emu.mns.queue_messages(QUEUE) == []
    for batch_id in ids:
        batch = emu.imm.get_batch(FLEET, batch_id)
        assert batch["Actions"] == ACTIONS and batch["State"] == "Running"  # updated, then resumed


def _handler(invoke):
    import handler

    return handler.handler


def test_a_selection_up_to_fanout_batches_is_applied_in_place(invoke, emu, work_queue):
    emu.imm.create_batches(FLEET, 20, state="Ready", tags={"tier": "gold"})
    status, body, _ = invoke.post(selector_doc())
    assert status == 200 and {r["status"] for r in body["results"]} == {"updated"}
    assert emu.mns.queue_messages(QUEUE) == []


def test_a_dry_run_is_never_fanned_out(invoke, emu, work_queue):
    emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    status, body, _ = invoke.post(selector_doc(DryRun=True))
    assert status == 200 and {r["status"] for r in body["results"]} == {"dry_run"}
    assert emu.mns.queue_messages(QUEUE) == []


def test_without_work_queue_every_match_is_applied_in_the_invocation(invoke, emu, fn_env):
    fn_env.setenv("FANOUT_BATCHES", "5")
    emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    status, body, _ = invoke.post(selector_doc())
    assert status == 200 and len(body["results"]) == 30


def test_a_send_that_keeps_failing_leaves_the_batches_failed_never_lost(invoke, emu, work_queue):
    emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    emu.mns.deny(QUEUE, kind="queue")
    status, body, _ = invoke.post(selector_doc())
    assert status == 502 and {r["status"] for r in body["results"]} == {"failed"}
    assert body["results"][0]["error"]["code"] == "AccessDenied"
    with pytest.raises(DeliveryIncomplete):  # an event trigger: the platform delivers it again
        invoke.direct(selector_doc())
    emu.mns.allow()
    result = invoke.direct(selector_doc())
    assert {r["status"] for r in result["results"]} == {"queued"} and len(bodies(emu)) == 1


def test_a_send_that_fails_once_is_retried(invoke, emu, work_queue):
    emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    emu.faults.inject("BatchSendMessage", "unavailable", count=1, service="mns")
    status, body, _ = invoke.post(selector_doc())
    assert status == 202 and len(emu.calls(action="BatchSendMessage")) == 2


def test_work_messages_respect_mns_limits_with_large_documents(invoke, emu, work_queue):
    """Big documents: fewer per message, and BatchSendMessage requests within 64 KB after base64."""
    emu.imm.create_batches(FLEET, 60, state="Ready", tags={"tier": "gold"})
    params = [f"p{i}=" + "x" * 1500 for i in range(1)]
    result = invoke.direct(selector_doc(Actions=[{"Name": "video/convert", "Parameters": params}]))
    assert {r["status"] for r in result["results"]} == {"queued"}
    sent = bodies(emu)
    assert sum(len(b) for b in sent) == 60 and max(len(b) for b in sent) < 50


def test_the_pump_leaves_a_delivery_that_is_not_final_on_the_queue(invoke, emu, work_queue, sts, fn_env):
    ids = emu.imm.create_batches(FLEET, 25, state="Ready", tags={"tier": "gold"})
    invoke.direct(selector_doc())
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    key = Key(sts.access_key_id, sts.access_key_secret, sts.security_token)
    pump = Pump(emu.url, QUEUE, key, _handler(invoke))
    pump.round()
    assert pump.failed_deliveries == 1 and len(emu.mns.queue_messages(QUEUE)) == 1  # still there, for a retry
    assert emu.imm.get_batch(FLEET, ids[0])["Actions"] != ACTIONS


# -- IMM_MAX_QPS -------------------------------------------------------------------------------------------------
def test_imm_max_qps_paces_every_imm_call_of_the_instance(invoke, emu, fn_env, monkeypatch):
    import time

    from imm_batch_updater import ratelimit

    released: list[float] = []  # when each call was let go (the function's side of the guarantee)
    acquire = ratelimit.Pacer.acquire

    def recorded(self, *args, **kwargs):
        ok = acquire(self, *args, **kwargs)
        released.append(time.monotonic())
        return ok

    monkeypatch.setattr(ratelimit.Pacer, "acquire", recorded)
    fn_env.setenv("IMM_MAX_QPS", "25")
    fn_env.setenv("UPDATE_CONCURRENCY", "16")
    emu.imm.create_batches(FLEET, 40, state="Ready", tags={"tier": "gold"})
    result = invoke.direct(selector_doc(), context=fc_context(invoke.sts, timeout=30))
    assert {r["status"] for r in result["results"]} == {"updated"}
    assert len(released) == 41  # one ListBatches, 40 UpdateBatch: every IMM call is paced
    released.sort()
    # Any one-second window holds at most 25 starts, evenly spread (40 ms apart), not sent in bursts.
    assert max(sum(1 for t in released if s <= t < s + 1.0) for s in released) <= 25
    gaps = [b - a for a, b in zip(released, released[1:], strict=False)]
    assert min(gaps) > 0.035 and released[-1] - released[0] >= 40 / 25 - 0.05
    # At IMM's end the arrivals carry the network's jitter: never more than one over in any second.
    arrived = sorted(c.started for c in emu.calls(service="imm"))
    assert max(sum(1 for t in arrived if s <= t < s + 1.0) for s in arrived) <= 26


def test_without_imm_max_qps_calls_are_not_paced(invoke, emu, fn_env):
    emu.imm.create_batches(FLEET, 40, state="Ready", tags={"tier": "gold"})
    result = invoke.direct(selector_doc())
    assert {r["status"] for r in result["results"]} == {"updated"}
    starts = sorted(c.started for c in emu.calls(service="imm"))
    assert starts[-1] - starts[0] < 1.0


def test_a_redelivered_fanned_out_resume_selection_ends_unchanged_not_in_conflicts(invoke, emu, work_queue, sts):
    """The first delivery's work was applied (updated and resumed: the batches are Running now) and the platform
    delivers the selection again (a lost answer). DESIGN pins the fan-out (every matched batch `queued`), so the
    work is queued again; each work document then finds its batch holding the values and is `updated` `unchanged`,
    with no UpdateBatch or ResumeBatch, where it used to be a `conflict`: a dead letter per batch of a fleet change
    that was made."""
    ids = emu.imm.create_batches(FLEET, 30, state="Failed", tags={"tier": "gold"})
    doc = selector_doc(MaxBatches=1000, Resume=True)
    applied = []

    def handler(event, context):
        answer = _handler(invoke)(event, context)
        applied.extend(answer["results"])
        return answer

    pump = Pump(emu.url, QUEUE, Key(sts.access_key_id, sts.access_key_secret, sts.security_token), handler)
    assert invoke.post(doc)[0] == 202 and pump.drain() == 1 and pump.failed_deliveries == 0
    assert {emu.imm.get_batch(FLEET, i)["State"] for i in ids} == {"Running"}
    writes = len(emu.calls(action="UpdateBatch")) + len(emu.calls(action="ResumeBatch"))
    applied.clear()
    status, body, _ = invoke.post(doc)
    assert status == 202 and {r["status"] for r in body["results"]} == {"queued"}  # as DESIGN pins
    assert pump.drain() == 1 and pump.failed_deliveries == 0
    assert sorted(r["batch_id"] for r in applied) == sorted(ids)
    assert {(r["status"], r.get("unchanged"), r["resumed"], r["state"]) for r in applied} == {
        ("updated", True, False, "Running")
    }
    assert len(emu.calls(action="UpdateBatch")) + len(emu.calls(action="ResumeBatch")) == writes
