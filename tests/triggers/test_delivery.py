"""Delivery semantics shared by every event trigger: per-item results, raise iff something is not final,
duplicates applied once, per-batch order, bounded parallelism."""

from __future__ import annotations

import json
import time

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import FAILED, PROJECT, READY, RUNNING
from tests.triggers.events import DOC, cloud_event, oss_event, oss_record, run, statuses, topic_event

LATENCY_S = 0.3


def tagged(n: int, batch: str = READY) -> str:
    return json.dumps({"ProjectName": PROJECT, "Id": batch, "Tags": {"n": str(n)}})


# ---- raise / no raise ----------------------------------------------------------------------------------------------
def test_final_failures_never_raise(invoke, emu):
    events = [
        cloud_event(tagged(1), "A"),
        cloud_event(tagged(1, RUNNING), "B"),  # conflict
        cloud_event(tagged(1, "batch-missing"), "C"),  # not_found
        cloud_event("not json", "D"),  # invalid
    ]
    assert statuses(run(invoke, events)) == ["updated", "conflict", "not_found", "invalid"]


def test_a_not_final_item_raises_after_every_item_was_processed_and_logged(invoke, emu, capsys):
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    events = [cloud_event(tagged(1), "A"), cloud_event(tagged(1, "batch-missing"), "B"), cloud_event("{", "C")]
    with pytest.raises(DeliveryIncomplete, match="1 of 3 update"):
        run(invoke, events)
    assert len(emu.calls(action="GetBatch")) == 2  # the items after the failing one were processed too
    outcomes = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"msg":"outcome"' in line]
    assert sorted(o["status"] for o in outcomes) == ["failed", "invalid", "not_found"]


def test_throttling_that_persists_raises(invoke, emu):
    emu.faults.inject("UpdateBatch", "throttle", count=None, status=429)
    with pytest.raises(DeliveryIncomplete, match="throttled"):
        run(invoke, topic_event(json.dumps(DOC)))


def test_the_redelivery_after_a_raise_applies_harmlessly(invoke, emu):
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    event = [cloud_event(tagged(1), "A"), cloud_event(tagged(1, FAILED), "B")]
    with pytest.raises(DeliveryIncomplete):
        run(invoke, event)
    emu.faults.clear()  # IMM recovered
    assert statuses(run(invoke, event)) == ["updated", "updated"]  # the platform's retry: B is simply set again
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"n": "1"}


# ---- duplicates ----------------------------------------------------------------------------------------------------
def test_the_same_queue_message_twice_in_a_batch_push_is_applied_once(invoke, emu):
    """Applied once, but each copy gets a result (one per document): the repeat is marked `duplicate`."""
    result = run(invoke, [cloud_event(tagged(1), "SAME"), cloud_event(tagged(1), "SAME")])
    assert statuses(result) == ["updated", "updated"] and len(emu.calls(action="UpdateBatch")) == 1
    first, repeat = result["results"]
    assert "duplicate" not in first and first["attempts"] == 2
    assert repeat == {**first, "duplicate": True, "attempts": 0}


def test_a_redelivered_message_does_not_overwrite_a_later_one(invoke, emu):
    """A, B, A(again) for one batch: without message-id dedupe the stale A would be applied last."""
    events = [cloud_event(tagged(1), "A"), cloud_event(tagged(2), "B"), cloud_event(tagged(1), "A")]
    result = run(invoke, events)
    assert [(r["message_id"], r.get("duplicate", False)) for r in result["results"]] == [
        ("A", False),
        ("B", False),
        ("A", True),
    ]
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"n": "2"}
    assert len(emu.calls(action="UpdateBatch")) == 2


def test_a_repeat_of_a_bulk_message_or_of_a_failure_repeats_each_result(invoke, emu):
    bulk = json.dumps([json.loads(tagged(1)), json.loads(tagged(1, FAILED))])
    events = [cloud_event(bulk, "BULK"), cloud_event("not json", "BAD"), cloud_event(bulk, "BULK")]
    events.append(cloud_event("not json", "BAD"))
    result = run(invoke, events)
    assert statuses(result) == ["updated", "updated", "invalid", "updated", "updated", "invalid"]
    assert [r.get("index") for r in result["results"]] == [0, 1, None, 0, 1, None]
    assert [r.get("duplicate", False) for r in result["results"]] == [False] * 3 + [True] * 3
    assert len(emu.calls(action="UpdateBatch")) == 2


def test_the_same_oss_record_twice_is_read_and_applied_once(invoke, emu):
    etag = emu.oss.put_object("demo-bucket", "requests/a.json", json.dumps(DOC).encode()).etag
    record = oss_record("demo-bucket", "requests/a.json", etag=etag)
    assert statuses(run(invoke, oss_event(record, record))) == ["updated", "updated"]
    assert len(emu.calls(action="GetObject")) == 1 and len(emu.calls(action="UpdateBatch")) == 1


def test_different_messages_with_identical_documents_keep_their_own_results(invoke, emu):
    result = run(invoke, [cloud_event(tagged(1), "A"), cloud_event(tagged(1), "B")])
    assert [r["message_id"] for r in result["results"]] == ["A", "B"] and statuses(result) == ["updated"] * 2


# ---- order and parallelism -----------------------------------------------------------------------------------------
def test_updates_to_one_batch_keep_delivery_order(invoke, emu, fn_env):
    """The first UpdateBatch is slowed down: were the batch's updates run concurrently, it would finish last."""
    fn_env.setenv("UPDATE_CONCURRENCY", "8")
    emu.faults.inject("UpdateBatch", "latency", count=1, seconds=LATENCY_S)
    events = [cloud_event(tagged(n), f"M{n}") for n in range(4)]
    events.insert(2, cloud_event(tagged(9, FAILED), "OTHER"))  # another batch in between
    result = run(invoke, events)
    assert statuses(result) == ["updated"] * 5
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"n": "3"}
    assert [r["message_id"] for r in result["results"]] == ["M0", "M1", "OTHER", "M2", "M3"]


def _eight_batches(emu, value: int = 1) -> list[dict]:
    for i in range(8):
        if not emu.imm.has_batch(PROJECT, f"batch-par-{i}"):
            emu.imm.create_batch(PROJECT, id=f"batch-par-{i}", state="Ready")
    # A new value each time: a batch already holding the requested values is not sent again.
    return [cloud_event(tagged(value, f"batch-par-{i}"), f"P{i}-{value}") for i in range(8)]


def _timed(invoke, events) -> float:
    started = time.monotonic()
    assert statuses(run(invoke, events)) == ["updated"] * len(events)
    return time.monotonic() - started


def test_different_batches_are_applied_in_parallel(invoke, emu, fn_env):
    events = _eight_batches(emu)
    emu.faults.inject("UpdateBatch", "latency", count=None, seconds=LATENCY_S)
    fn_env.setenv("UPDATE_CONCURRENCY", "1")
    sequential = _timed(invoke, events)
    fn_env.setenv("UPDATE_CONCURRENCY", "8")
    parallel = _timed(invoke, _eight_batches(emu, value=2))
    assert sequential >= 8 * LATENCY_S  # the measured baseline really was sequential
    assert parallel < sequential / 3, (parallel, sequential)
    calls = emu.calls(action="UpdateBatch")
    assert max_in_flight(calls[:8]) == 1 and max_in_flight(calls[8:]) > 2


def test_parallelism_is_bounded_by_update_concurrency(invoke, emu, fn_env):
    events = _eight_batches(emu)
    emu.faults.inject("UpdateBatch", "latency", count=None, seconds=LATENCY_S)
    fn_env.setenv("UPDATE_CONCURRENCY", "2")
    # At most 2 calls in flight: 8 slow calls need at least 4 rounds, however fast the machine is.
    assert _timed(invoke, events) >= 4 * LATENCY_S
    assert max_in_flight(emu.calls(action="UpdateBatch")) == 2  # and the emulator saw exactly two at a time


def max_in_flight(calls) -> int:
    """The most requests the emulator was handling at one moment (from each request's [started, at])."""
    edges = sorted([(c.started, 1) for c in calls] + [(c.at, -1) for c in calls])
    current = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start: touching intervals do not overlap
        current += step
        peak = max(peak, current)
    return peak
