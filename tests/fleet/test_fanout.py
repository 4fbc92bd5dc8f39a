"""Fan-out over the work queue and IMM's quota (issue #13, parts 2, 3 and 6), end to end on one machine: the
function sends the work documents to the emulator's MNS queue with the MNS SDK (signed with the STS key), the
local pump (`devtools.pump`, the twin of the EventBridge batch-push trigger) delivers them back to
`handler.handler`, and the IMM SDK applies them."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.pump import Key, Pump
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import examples, fc_context
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


_STATES = {"running": "Running", "suspended": "Suspended", "ready": "Ready", "failed": "Failed"}
_KINDS = tuple(k + held for k in _STATES for held in ("", "-held"))
_projects = itertools.count()


def _fleet_of(emu, kinds):
    """A new project with one gold batch per kind: its state, and whether it holds ACTIONS already (`-held`)."""
    project = f"settle-{next(_projects)}"
    ids = []
    for kind in kinds:
        actions = ACTIONS if kind.endswith("-held") else [{"Name": "video/convert", "Parameters": ["fps=30"]}]
        state = _STATES[kind.removesuffix("-held")]
        [batch_id] = emu.imm.create_batches(project, 1, state=state, tags={"tier": "gold"}, actions=actions)
        ids.append(batch_id)
    return project, ids


def _expected(kind, resume):
    """What applying the selection here would answer for a batch of `kind` without any call beyond the listing, or
    "queued" for what still needs UpdateBatch or ResumeBatch."""
    state, held = kind.removesuffix("-held"), kind.endswith("-held")
    if held and not (resume and state == "failed"):
        return "updated"  # unchanged
    if state in ("running", "suspended") and not held:
        return "conflict"
    return "queued"


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(_KINDS), min_size=21, max_size=40), resume=st.booleans())
def test_what_the_listing_settles_is_answered_at_once_and_only_the_rest_is_queued(
    invoke, emu, work_queue, kinds, resume
):
    """A fanned-out selection answers what its listing settles as applying it here would (a batch in a state that
    forbids the update: `conflict`; one that holds the values with nothing to resume: `updated` `unchanged`), and
    queues only the rest: no work message, and no GetBatch later, for a batch whose outcome is already known."""
    project, ids = _fleet_of(emu, kinds)
    sent_before = {d["Id"] for b in bodies(emu) for d in b}
    status, body, _ = invoke.post({**selector_doc(MaxBatches=1000, Resume=resume), "ProjectName": project})
    results = {r["batch_id"]: r for r in body["results"]}
    assert [results[i]["status"] for i in ids] == [_expected(k, resume) for k in kinds]
    expected = dict(zip(ids, [_expected(k, resume) for k in kinds], strict=True))
    assert all(results[i].get("unchanged") is True for i in ids if expected[i] == "updated")
    queued = {i for i in ids if expected[i] == "queued"}
    assert {d["Id"] for b in bodies(emu) for d in b} - sent_before == queued
    assert not [c for c in emu.calls(service="imm") if c.action in ("GetBatch", "UpdateBatch", "ResumeBatch")]
    alike = {"queued": 202, "updated": 200, "conflict": 409}  # every result alike (DESIGN's HTTP rule), else 207
    assert status == (alike[expected[ids[0]]] if len(set(expected.values())) == 1 else 207)


def test_a_redelivered_fanned_out_selection_is_not_queued_again(invoke, emu, work_queue, sts):
    """The first delivery's work was applied (updated and resumed: the batches are Running now); the platform
    delivers the selection again (a lost answer). Every batch is `updated` `unchanged` from the listing: nothing is
    queued again, and the queue's invocations do not read each batch again."""
    ids = emu.imm.create_batches(FLEET, 60, state="Failed", tags={"tier": "gold"})
    doc = selector_doc(MaxBatches=1000, Resume=True)
    assert invoke.post(doc)[0] == 202
    pump = Pump(emu.url, QUEUE, Key(sts.access_key_id, sts.access_key_secret, sts.security_token), _handler(invoke))
    assert pump.drain() == 2 and pump.failed_deliveries == 0
    assert {emu.imm.get_batch(FLEET, i)["State"] for i in ids} == {"Running"}
    sends, reads = len(emu.calls(action="BatchSendMessage")), len(emu.calls(action="GetBatch"))
    status, body, _ = invoke.post(doc)
    assert status == 200 and [r["batch_id"] for r in body["results"]] == ids
    assert {(r["status"], r.get("unchanged"), r["resumed"]) for r in body["results"]} == {("updated", True, False)}
    assert (len(emu.calls(action="BatchSendMessage")), len(emu.calls(action="GetBatch"))) == (sends, reads)
