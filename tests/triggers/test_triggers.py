"""Every trigger shape through handler.handler, against the emulator (IMM + OSS)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import FAILED, PROJECT, READY, RUNNING

DOC = {"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "trigger"}}


def run(invoke, event):
    return invoke.direct(None, raw=json.dumps(event).encode())


def statuses(result):
    return [r["status"] for r in result["results"]]


# ---- MNS topic ---------------------------------------------------------------------------------------------------
def topic_event(message: str, **attrs):
    return {
        "TopicOwner": "1186",
        "Message": message,
        "Subscriber": "1186",
        "PublishTime": 1550216480040,
        "SubscriptionName": "sub",
        "MessageMD5": "BA4B",
        "TopicName": "updates",
        "MessageId": "MID-1",
        **attrs,
    }


def test_mns_topic_json_format(invoke, emu):
    result = run(invoke, topic_event(json.dumps(DOC), Extend="x"))
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"] == "MID-1"
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}


def test_mns_topic_base64_message(invoke, emu):
    result = run(invoke, topic_event(base64.b64encode(json.dumps(DOC).encode()).decode()))
    assert statuses(result) == ["updated"]


def test_mns_topic_stream_with_attributes(invoke):
    assert statuses(run(invoke, {"body": json.dumps([DOC, {**DOC, "Id": FAILED}]), "attrs": {"k": "v"}})) == [
        "updated",
        "updated",
    ]


def test_mns_topic_stream_without_attributes_is_the_raw_body(invoke):
    assert statuses(invoke.direct(DOC)) == ["updated"]


def test_mns_topic_bad_message_is_invalid_not_raised(invoke, emu):
    result = run(invoke, topic_event("definitely not json"))
    assert statuses(result) == ["invalid"] and emu.calls(service="imm") == []
    empty = run(invoke, topic_event(""))
    assert empty["results"][0]["error"]["details"][0]["path"] == "/Message"


# ---- MNS queue via EventBridge -------------------------------------------------------------------------------------
def cloud_event(body: str, message_id: str = "M1"):
    return {
        "id": f"ev-{message_id}",
        "source": "MNS-fn-trigger",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "subject": "acs:mns:cn-hangzhou:1:queues/q",
        "time": "2026-01-01T00:00:00Z",
        "data": {"requestId": "R", "messageId": message_id, "messageBody": body},
    }


def test_mns_queue_single_event_base64_body(invoke):
    result = run(invoke, cloud_event(base64.b64encode(json.dumps(DOC).encode()).decode()))
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"] == "M1"


def test_mns_queue_batch_push_array(invoke, emu):
    events = [cloud_event(json.dumps({**DOC, "Tags": {"n": str(i)}}), f"M{i}") for i in range(3)]
    events.append(cloud_event(json.dumps({**DOC, "Id": RUNNING}), "M9"))
    result = run(invoke, events)
    assert statuses(result) == ["updated", "updated", "updated", "conflict"]  # final: no raise
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"n": "2"}  # delivery order, last wins


def test_mns_queue_recognised_by_type_not_source(invoke):
    event = {**cloud_event(json.dumps(DOC)), "source": "acs:mns"}
    assert statuses(run(invoke, event)) == ["updated"]


def test_mns_queue_duplicate_message_ids_are_applied_once(invoke, emu):
    body = json.dumps(DOC)
    result = run(invoke, [cloud_event(body, "SAME"), cloud_event(body, "SAME")])
    assert statuses(result) == ["updated"] and len(emu.calls(action="UpdateBatch")) == 1


def test_mns_queue_missing_body_names_its_path(invoke):
    event = cloud_event("x")
    del event["data"]["messageBody"]
    result = run(invoke, [cloud_event(json.dumps(DOC), "A"), event])
    assert statuses(result) == ["updated", "invalid"]
    assert result["results"][1]["error"]["details"][0]["path"] == "/1/data/messageBody"


def test_mns_queue_not_final_item_raises_after_processing_everything(invoke, emu):
    emu.imm.create_batch(PROJECT, id="batch-other", state="Ready")
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    events = [cloud_event(json.dumps(DOC), "A"), cloud_event(json.dumps({**DOC, "Id": "batch-missing"}), "B")]
    with pytest.raises(DeliveryIncomplete, match="1 of 2"):
        run(invoke, events)
    assert len(emu.calls(action="GetBatch")) == 2  # the second item was processed too


def test_parallel_batches_are_faster_than_sequential(invoke, emu, fn_env):
    for i in range(8):
        emu.imm.create_batch(PROJECT, id=f"batch-par-{i}", state="Ready")
    emu.faults.inject("UpdateBatch", "latency", count=None, seconds=0.2)
    events = [
        cloud_event(json.dumps({"ProjectName": PROJECT, "Id": f"batch-par-{i}", "Tags": {"p": "1"}}), f"P{i}")
        for i in range(8)
    ]
    fn_env.setenv("UPDATE_CONCURRENCY", "1")
    started = time.monotonic()
    assert statuses(run(invoke, events)) == ["updated"] * 8
    sequential = time.monotonic() - started
    fn_env.setenv("UPDATE_CONCURRENCY", "8")
    started = time.monotonic()
    assert (
        statuses(run(invoke, [{**e, "data": {**e["data"], "messageId": e["data"]["messageId"] + "b"}} for e in events]))
        == ["updated"] * 8
    )
    parallel = time.monotonic() - started
    assert parallel < sequential / 3, (parallel, sequential)


# ---- OSS ---------------------------------------------------------------------------------------------------------
def oss_event(bucket: str, key: str, size: int = 10, name: str = "ObjectCreated:PutObject"):
    return {
        "events": [
            {
                "eventName": name,
                "eventSource": "acs:oss",
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventVersion": "1.0",
                "region": "cn-hangzhou",
                "oss": {
                    "bucket": {"name": bucket, "arn": f"acs:oss:cn-hangzhou:1:{bucket}"},
                    "object": {"key": key, "eTag": "ETAG", "size": size},
                },
                "responseElements": {"requestId": "R"},
            }
        ]
    }


@pytest.mark.parametrize(
    ("stored", "encoded"),
    [
        ("updates/a.json", "updates/a.json"),
        ("updates/with space+plus.json", "updates/with+space%2Bplus.json"),
        ("updates/中文 ü.json", "updates/%E4%B8%AD%E6%96%87+%C3%BC.json"),
    ],
)
def test_oss_upload_is_applied_with_decoded_key(invoke, emu, stored, encoded):
    data = json.dumps([DOC, {**DOC, "Id": FAILED, "Resume": True}]).encode()
    emu.oss.put_object("demo-bucket", stored, data)
    result = run(invoke, oss_event("demo-bucket", encoded, len(data)))
    assert statuses(result) == ["updated", "updated"] and result["results"][1]["resumed"] is True
    assert result["results"][0]["message_id"] == f"oss://demo-bucket/{stored}@ETAG"


def test_oss_missing_object_is_invalid(invoke):
    result = run(invoke, oss_event("demo-bucket", "updates/gone.json"))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "NoSuchKey"


def test_oss_oversized_object_is_invalid_without_reading(invoke, emu, fn_env):
    fn_env.setenv("OSS_MAX_OBJECT_BYTES", "100")
    emu.oss.put_object("demo-bucket", "updates/big.json", b" " * 200)
    result = run(invoke, oss_event("demo-bucket", "updates/big.json", size=200))
    assert statuses(result) == ["invalid"] and emu.calls(action="GetObject") == []
    stale = run(invoke, oss_event("demo-bucket", "updates/big.json", size=10))  # event size wrong: read is bounded
    assert stale["results"][0]["error"]["code"] == "TooLarge"


def test_oss_access_denied_is_rejected(invoke, emu):
    emu.oss.put_object("demo-bucket", "secret/x.json", json.dumps(DOC).encode())
    emu.oss.deny("demo-bucket", "secret/")
    result = run(invoke, oss_event("demo-bucket", "secret/x.json"))
    assert statuses(result) == ["rejected"]


def test_oss_server_error_is_failed_and_retried_by_the_platform(invoke, emu):
    emu.oss.put_object("demo-bucket", "updates/a.json", json.dumps(DOC).encode())
    emu.faults.inject("GetObject", "internal", count=None)
    with pytest.raises(DeliveryIncomplete):
        run(invoke, oss_event("demo-bucket", "updates/a.json"))
    assert emu.calls(action="UpdateBatch") == []


def test_oss_removal_events_are_ignored(invoke, emu):
    result = run(invoke, oss_event("demo-bucket", "updates/a.json", name="ObjectRemoved:DeleteObject"))
    assert result == {"results": []} and emu.calls() == []


def test_oss_reads_with_the_role_credentials(invoke, emu, sts):
    emu.oss.put_object("demo-bucket", "updates/a.json", json.dumps(DOC).encode())
    run(invoke, oss_event("demo-bucket", "updates/a.json"))
    assert {c.access_key_id for c in emu.calls(service="oss")} == {sts.access_key_id}


# ---- timer, async destination --------------------------------------------------------------------------------------
def test_timer_payload_is_the_document(invoke, emu):
    result = run(invoke, {"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "nightly", "payload": json.dumps(DOC)})
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"] == "nightly@2026-01-01T00:00:00Z"


@pytest.mark.parametrize("payload", ["", None, "   "])
def test_timer_empty_payload_is_a_clear_error(invoke, payload):
    event = {"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "nightly"}
    if payload is not None:
        event["payload"] = payload
    [result] = run(invoke, event)["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == "/payload"
    assert "payload" in result["error"]["message"]


def test_async_destination_record_is_invalid_and_not_http(invoke, emu):
    record = {
        "timestamp": 1,
        "requestContext": {
            "requestId": "r1",
            "functionArn": "acs:fc:::functions/x",
            "condition": "UnhandledInvocationError",
            "approximateInvokeCount": 1,
        },
        "requestPayload": json.dumps(DOC),
        "responseContext": {"statusCode": 200, "functionError": "x"},
        "responsePayload": "{}",
    }
    result = run(invoke, record)
    assert "statusCode" not in result and statuses(result) == ["invalid"]
    assert emu.calls(service="imm") == []
