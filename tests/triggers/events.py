"""Trigger event builders, shaped like the FC 3.0 trigger payloads (the same as examples/)."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.conftest import PROJECT, READY

DOC: dict[str, Any] = {"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "trigger"}}


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def run(invoke: Any, event: Any) -> dict[str, Any]:
    """handler.handler with the event as FC passes it (JSON bytes) and an FC-shaped context."""
    return invoke.direct(None, raw=json.dumps(event).encode())


def statuses(result: dict[str, Any]) -> list[str]:
    return [r["status"] for r in result["results"]]


def pointer(result: dict[str, Any], i: int = 0) -> str:
    return result["results"][i]["error"]["details"][0]["path"]


def topic_event(message: str, message_id: str = "MID-1", **attributes: Any) -> dict[str, Any]:
    return {
        "TopicOwner": "1186",
        "Message": message,
        "Subscriber": "1186",
        "PublishTime": 1550216480040,
        "SubscriptionName": "sub",
        "MessageMD5": "BA4B",
        "TopicName": "updates",
        "MessageId": message_id,
        **attributes,
    }


def cloud_event(body: str, message_id: str = "M1") -> dict[str, Any]:
    return {
        "id": f"ev-{message_id}",
        "source": "MNS-imm-batch-updater-queue",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "datacontenttype": "application/json; charset=utf-8",
        "subject": "acs:mns:cn-hangzhou:1:queues/q",
        "time": "2026-01-01T00:00:00Z",
        "aliyunaccountid": "1",
        "data": {"requestId": "R", "messageId": message_id, "messageBody": body},
    }


def oss_record(
    bucket: str, key: str, size: int | None = 10, name: str = "ObjectCreated:PutObject", etag: str = "ETAG"
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "eTag": etag, "deltaSize": size}
    if size is not None:
        obj["size"] = size
    return {
        "eventName": name,
        "eventSource": "acs:oss",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventVersion": "1.0",
        "region": "cn-hangzhou",
        "oss": {
            "bucket": {"name": bucket, "arn": f"acs:oss:cn-hangzhou:1:{bucket}", "ownerIdentity": "1"},
            "object": obj,
            "ossSchemaVersion": "1.0",
            "ruleId": "r",
        },
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"requestId": "R"},
        "userIdentity": {"principalId": "1"},
    }


def oss_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(records)}


def oss_cloud_event(record: dict[str, Any], event_id: str = "E1", kind: str | None = None) -> dict[str, Any]:
    """The EventBridge-based OSS trigger's CloudEvent around a native record (`oss_record`): `data` is the record,
    `type` its eventName with `oss:` (the DataWorks "Triggered workflows" sample, docs/deploy.md 9)."""
    bucket, key = record["oss"]["bucket"]["name"], record["oss"]["object"]["key"]
    return {
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": "1",
        "data": record,
        "subject": f"acs:oss:cn-hangzhou:1:{bucket}/{key}",
        "aliyunoriginalaccountid": "1",
        "source": "acs.oss",
        "type": kind if kind is not None else f"oss:{record['eventName']}",
        "aliyunpublishtime": "2026-01-01T00:00:00.682Z",
        "specversion": "1.0",
        "aliyuneventbusname": "default",
        "id": event_id,
        "time": "2026-01-01T00:00:00.000Z",
        "aliyunregionid": "cn-hangzhou",
    }


def timer_event(payload: Any = None, name: str = "nightly", when: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    event: dict[str, Any] = {"triggerTime": when, "triggerName": name}
    if payload is not None:
        event["payload"] = payload
    return event


def async_destination_record(payload: str) -> dict[str, Any]:
    return {
        "timestamp": 1600000000000,
        "requestContext": {
            "requestId": "r1",
            "functionArn": "acs:fc:cn-hangzhou:1:functions/imm-batch-updater",
            "condition": "UnhandledInvocationError",
            "approximateInvokeCount": 4,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "functionError": "UnhandledInvocationError"},
        "responsePayload": '{"errorMessage": "1 of 1 update(s) not final (failed)"}',
    }
