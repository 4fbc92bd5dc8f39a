"""Driving batches through their life: progressions, set_state, and the in-process inspection API."""

from __future__ import annotations

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

P = "demo-project"


def state_of(client, batch_id: str) -> str:
    return client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id)).body.batch.state


def test_after_reads(client, emu):
    emu.imm.progress("Running", "Succeeded", after_reads=2)
    seen = [state_of(client, "batch-demo-running") for _ in range(4)]
    assert seen == ["Running", "Running", "Succeeded", "Succeeded"]


def test_after_reads_zero_changes_on_the_first_read(client, emu):
    emu.imm.progress("Running", "Failed", after_reads=0, error="disk full")
    batch = client.get_batch(m.GetBatchRequest(project_name=P, id="batch-demo-running")).body.batch
    assert (batch.state, batch.error) == ("Failed", "disk full")


def test_list_counts_as_a_read(client, emu):
    emu.imm.progress("Running", "Succeeded", after_reads=1)
    states = []
    for _ in range(2):
        batches = client.list_batches(m.ListBatchesRequest(project_name=P)).body.batches
        states.append({b.id: b.state for b in batches}["batch-demo-running"])
    assert states == ["Running", "Succeeded"]


def test_after_seconds(client, emu, clock):
    emu.imm.progress("Running", "Succeeded", after_seconds=30)
    emu.imm.set_state(P, "batch-demo-running", "Running")  # enters Running now (fake clock)
    clock.advance(29)
    assert state_of(client, "batch-demo-running") == "Running"
    clock.advance(1)
    assert emu.imm.get_batch(P, "batch-demo-running")["State"] == "Succeeded"  # inspection sees it too


def test_inspection_does_not_count_as_a_read(emu):
    emu.imm.progress("Running", "Succeeded", after_reads=0)
    assert emu.imm.get_batch(P, "batch-demo-running")["State"] == "Running"


def test_scoped_progression(client, emu):
    other = emu.imm.create_batch(P, state="Running")
    emu.imm.progress("Running", "Succeeded", after_reads=0, batch_id=other)
    assert state_of(client, other) == "Succeeded"
    assert state_of(client, "batch-demo-running") == "Running"


def test_full_life_cycle(client, emu):
    emu.imm.progress("Ready", "Running", after_reads=0)
    emu.imm.progress("Running", "Failed", after_reads=1, error="source bucket unreachable")
    batch_id = client.create_batch(
        m.CreateBatchRequest(
            project_name=P,
            input=m.Input(oss=m.InputOSS(bucket="demo-bucket", prefix="x/")),
            actions=[m.CreateBatchRequestActions(name="doc/convert")],
        )
    ).body.id
    assert emu.imm.get_batch(P, batch_id)["State"] == "Ready"
    assert state_of(client, batch_id) == "Running"
    with pytest.raises(ClientException):
        client.update_batch(m.UpdateBatchRequest(project_name=P, id=batch_id, tags={"a": "b"}))
    assert state_of(client, batch_id) == "Failed"
    emu.imm.clear_progressions()
    client.update_batch(m.UpdateBatchRequest(project_name=P, id=batch_id, tags={"fixed": "yes"}))
    assert state_of(client, batch_id) == "Failed"  # an update does not resume
    client.resume_batch(m.ResumeBatchRequest(project_name=P, id=batch_id))
    assert state_of(client, batch_id) == "Running"
    client.suspend_batch(m.SuspendBatchRequest(project_name=P, id=batch_id))
    client.resume_batch(m.ResumeBatchRequest(project_name=P, id=batch_id))
    emu.imm.progress("Running", "Succeeded", after_reads=0)
    assert state_of(client, batch_id) == "Succeeded"
    client.delete_batch(m.DeleteBatchRequest(project_name=P, id=batch_id))
    assert not emu.imm.has_batch(P, batch_id)


def test_set_state_sets_and_clears_the_error(emu, clock):
    emu.imm.set_state(P, "batch-demo-ready", "Failed", error="boom")
    batch = emu.imm.get_batch(P, "batch-demo-ready")
    assert (batch["State"], batch["Error"]) == ("Failed", "boom")
    emu.imm.set_state(P, "batch-demo-ready", "Succeeded")
    batch = emu.imm.get_batch(P, "batch-demo-ready")
    assert batch["State"] == "Succeeded" and "Error" not in batch


def test_set_statistic(client, emu):
    emu.imm.set_statistic(P, "batch-demo-running", SubmitSuccess=100, SkipFiles=4)
    stat = client.get_batch(m.GetBatchRequest(project_name=P, id="batch-demo-running")).body.batch.statistic
    assert (stat.submit_success, stat.submit_failure, stat.skip_files) == (100, 0, 4)


def test_get_batch_is_a_deep_copy(emu):
    copy = emu.imm.get_batch(P, "batch-demo-ready")
    copy["Input"]["OSS"]["Bucket"] = "mutated"
    copy["Tags"]["x"] = "y"
    fresh = emu.imm.get_batch(P, "batch-demo-ready")
    assert fresh["Input"]["OSS"]["Bucket"] == "demo-bucket" and "x" not in fresh["Tags"]


def test_inspection_errors(emu):
    with pytest.raises(KeyError):
        emu.imm.get_batch(P, "batch-nope")
    with pytest.raises(KeyError):
        emu.imm.set_state("no-project", "batch-demo-ready", "Ready")
    with pytest.raises(ValueError):
        emu.imm.set_state(P, "batch-demo-ready", "Succeed")
    with pytest.raises(ValueError):
        emu.imm.create_batch(P, id="batch-demo-ready")
    with pytest.raises(ValueError):
        emu.imm.progress("Running", "Done", after_reads=1)
    with pytest.raises(ValueError):
        emu.imm.progress("Running", "Succeeded")


def test_reset_forgets_everything(emu):
    emu.imm.progress("Running", "Succeeded", after_reads=0)
    emu.imm.set_wrong_state_error(code="X")
    emu.imm.reset()
    assert emu.imm.projects() == []
    assert emu.imm.wrong_state_error.code == "InvalidArgument"
    emu.imm.create_batch("p", id="b", state="Running")
    assert emu.imm.list_batches("p")[0]["State"] == "Running"
