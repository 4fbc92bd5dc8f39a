"""Every IMM batch operation through the real SDK client, with the responses' exact shapes."""

from __future__ import annotations

import re

import pytest
from alibabacloud_imm20200930 import models as m

from emulator.imm import format_time

P = "demo-project"
BATCH_KEYS = {
    "Id",
    "Input",
    "Actions",
    "ServiceRole",
    "State",
    "Statistic",
    "Tags",
    "CreateTime",
    "UpdateTime",
}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
REQUEST_ID_RE = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")


def create_request(**overrides) -> m.CreateBatchRequest:
    fields = dict(
        project_name=P,
        input=m.Input(oss=m.InputOSS(bucket="demo-bucket", prefix="in/", match_expressions=["*.pdf"])),
        actions=[
            m.CreateBatchRequestActions(
                name="doc/convert", parameters=["pages=3"], fast_fail_policy=m.FastFailPolicy(action="abort")
            )
        ],
        notification=m.CreateBatchRequestNotification(mns=m.MNS(topic_name="results")),
        service_role="AliyunIMMBatchTriggerRole",
        tags={"env": "test", "n": 1},
    )
    fields.update(overrides)
    return m.CreateBatchRequest(**fields)


def test_create_then_get_returns_the_batch_in_imm_shape(client, emu):
    created = client.create_batch(create_request())
    batch_id = created.body.id
    assert re.fullmatch(r"batch-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", batch_id)
    assert REQUEST_ID_RE.match(created.body.request_id)
    assert created.headers["x-acs-request-id"] == created.body.request_id

    got = client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id))
    batch = got.body.to_map()["Batch"]
    assert set(batch) == BATCH_KEYS | {"Notification"}
    assert batch["State"] == "Ready"
    assert batch["Input"] == {"OSS": {"Bucket": "demo-bucket", "Prefix": "in/", "MatchExpressions": ["*.pdf"]}}
    assert batch["Actions"] == [
        {"Name": "doc/convert", "Parameters": ["pages=3"], "FastFailPolicy": {"Action": "abort"}}
    ]
    assert batch["Notification"] == {"MNS": {"TopicName": "results"}}
    assert batch["Tags"] == {"env": "test", "n": 1}
    assert batch["Statistic"] == {"SubmitSuccess": 0, "SubmitFailure": 0, "SkipFiles": 0}
    assert TIME_RE.match(batch["CreateTime"]) and batch["CreateTime"] == batch["UpdateTime"]
    assert got.headers["content-type"].startswith("application/json")
    assert emu.imm.get_batch(P, batch_id) == batch


def test_create_defaults_the_service_role(client, emu):
    batch_id = client.create_batch(create_request(service_role=None, tags=None, notification=None)).body.id
    batch = emu.imm.get_batch(P, batch_id)
    assert batch["ServiceRole"] == "AliyunIMMBatchTriggerRole"
    assert "Tags" not in batch and "Notification" not in batch


def test_get_failed_batch_carries_its_error(client):
    batch = client.get_batch(m.GetBatchRequest(project_name=P, id="batch-demo-failed")).body.batch
    assert batch.state == "Failed" and "NoPermission" in batch.error


def test_update_replaces_only_the_given_fields_keeps_state_and_bumps_update_time(client, emu, clock):
    batch_id = emu.imm.create_batch(P, tags={"old": "x"})
    before = emu.imm.get_batch(P, batch_id)
    clock.advance(90)
    client.update_batch(m.UpdateBatchRequest(project_name=P, id=batch_id, tags={"new": "y"}))
    after = emu.imm.get_batch(P, batch_id)
    assert after["Tags"] == {"new": "y"}
    assert after["Input"] == before["Input"] and after["Actions"] == before["Actions"]
    assert after["State"] == "Ready" and after["CreateTime"] == before["CreateTime"]
    assert after["UpdateTime"] == format_time(clock.now) != before["UpdateTime"]

    client.update_batch(
        m.UpdateBatchRequest(
            project_name=P,
            id=batch_id,
            input=m.Input(oss=m.InputOSS(bucket="other", prefix="p/")),
            actions=[m.UpdateBatchRequestActions(name="video/convert", parameters=["format=mp4"])],
        )
    )
    after = emu.imm.get_batch(P, batch_id)
    assert after["Input"] == {"OSS": {"Bucket": "other", "Prefix": "p/"}}
    assert after["Actions"] == [{"Name": "video/convert", "Parameters": ["format=mp4"]}]
    assert after["Tags"] == {"new": "y"}


def test_update_of_a_failed_batch_keeps_it_failed(client, emu):
    client.update_batch(m.UpdateBatchRequest(project_name=P, id="batch-demo-failed", tags={"fixed": "yes"}))
    batch = emu.imm.get_batch(P, "batch-demo-failed")
    assert batch["State"] == "Failed" and batch["Tags"] == {"fixed": "yes"}


def test_suspend_resume_delete(client, emu):
    client.suspend_batch(m.SuspendBatchRequest(project_name=P, id="batch-demo-running"))
    assert emu.imm.get_batch(P, "batch-demo-running")["State"] == "Suspended"
    client.resume_batch(m.ResumeBatchRequest(project_name=P, id="batch-demo-running"))
    assert emu.imm.get_batch(P, "batch-demo-running")["State"] == "Running"

    client.resume_batch(m.ResumeBatchRequest(project_name=P, id="batch-demo-failed"))
    resumed = emu.imm.get_batch(P, "batch-demo-failed")
    assert resumed["State"] == "Running" and "Error" not in resumed

    response = client.delete_batch(m.DeleteBatchRequest(project_name=P, id="batch-demo-ready"))
    assert set(response.body.to_map()) == {"RequestId"}
    assert not emu.imm.has_batch(P, "batch-demo-ready")


@pytest.mark.parametrize("state", ["Ready", "Failed", "Suspended", "Succeeded"])
def test_delete_is_allowed_except_while_running(client, emu, state):
    batch_id = emu.imm.create_batch(P, state=state)
    client.delete_batch(m.DeleteBatchRequest(project_name=P, id=batch_id))
    assert not emu.imm.has_batch(P, batch_id)


def test_list_returns_every_demo_batch(client):
    body = client.list_batches(m.ListBatchesRequest(project_name=P)).body
    assert [b.id for b in body.batches] == ["batch-demo-ready", "batch-demo-running", "batch-demo-failed"]
    assert body.next_token == ""


def test_request_log_records_actions_statuses_and_key(client, emu):
    client.get_batch(m.GetBatchRequest(project_name=P, id="batch-demo-ready"))
    with pytest.raises(Exception):
        client.get_batch(m.GetBatchRequest(project_name=P, id="batch-nope"))
    records = emu.calls(action="GetBatch")
    assert [(r.service, r.status, r.access_key_id) for r in records] == [
        ("imm", 200, "local-ak"),
        ("imm", 404, "local-ak"),
    ]
    assert emu.calls(service="imm", action="UpdateBatch") == []
