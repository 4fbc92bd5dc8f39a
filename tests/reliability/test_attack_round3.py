"""Round 3 of the adversarial review (trigger sources, dedup, pipeline): each test fails on the code as reviewed."""

from __future__ import annotations

import json

import pytest

from imm_batch_updater.sources.base import DeliveryIncomplete
from tests.conftest import PROJECT, READY
from tests.triggers.events import cloud_event, oss_event, oss_record, run


def test_a_repeated_message_after_a_selector_keeps_every_result_in_place(invoke, emu):
    """Batch push [A: selector matching 3 batches, B: Id X, B again (redelivered)]. Every matched batch and B must
    have its own result, B's repeat a copy of B's: the duplicate plan must map messages to their outcomes after
    selectors expanded into one outcome per batch."""
    project = "dup-sel-project"
    matched = emu.imm.create_batches(project, 3, state="Ready", tags={"sel": "yes"})
    selector = {"ProjectName": project, "Selector": {"TagSelector": "sel=yes"}, "Tags": {"sel": "yes", "v": "1"}}
    single = {"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "B"}}
    event = [
        cloud_event(json.dumps(selector), "A"),
        cloud_event(json.dumps(single), "B"),
        cloud_event(json.dumps(single), "B"),
    ]
    results = run(invoke, event)["results"]
    got = [(r["batch_id"], r["message_id"], r.get("duplicate", False)) for r in results]
    expected = [(b, "A", False) for b in matched] + [(READY, "B", False), (READY, "B", True)]
    assert sorted(got, key=str) == sorted(expected, key=str), results
    assert [g[1:] for g in got] == [e[1:] for e in expected], results


def test_a_failed_message_after_a_selector_and_a_repeat_is_retried_not_lost(invoke, emu):
    """The same push with B's batch unreadable (GetBatch 503 throughout): B is `failed`, so the handler must raise
    DeliveryIncomplete for EventBridge to deliver it again. Its result must not be replaced by a copy of one of
    A's `updated` results (the update would be lost)."""
    project = "dup-sel-project2"
    emu.imm.create_batches(project, 2, state="Ready", tags={"sel": "yes"})
    selector = {"ProjectName": project, "Selector": {"TagSelector": "sel=yes"}, "Tags": {"sel": "yes", "v": "1"}}
    single = {"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "B"}}
    emu.faults.inject("GetBatch", "unavailable", count=None)
    event = [
        cloud_event(json.dumps(selector), "A"),
        cloud_event(json.dumps(single), "B"),
        cloud_event(json.dumps(single), "B"),
    ]
    with pytest.raises(DeliveryIncomplete):
        run(invoke, event)


def test_an_oss_event_holding_a_fault_outside_its_records_is_invalid(invoke, emu):
    """Strict input: a value that can never be sent anywhere in the event is `invalid` (pointer ""), as every
    other trigger does for the event around its body. The OSS source checked only inside each record, so a lone
    surrogate (or a duplicate key) at the event's top level was ignored and the object applied."""
    document = {"ProjectName": PROJECT, "Id": READY, "Tags": {"x": "1"}}
    emu.oss.put_object("demo-bucket", "req/a.json", json.dumps(document).encode())
    raw = json.dumps(oss_event(oss_record("demo-bucket", "req/a.json")))[:-1] + ', "extra": "\\ud800"}'
    before = len(emu.calls(action="UpdateBatch"))
    [result] = invoke.direct(None, raw=raw.encode())["results"]
    assert result["status"] == "invalid", result
    assert result["error"]["details"][0]["path"] == "", result
    assert len(emu.calls(action="UpdateBatch")) == before
