"""Timer events, FC async-destination records, and events no trigger sends, through handler.handler."""

from __future__ import annotations

import json

import pytest

from imm_batch_updater.sources.http import HttpSource
from tests.conftest import FAILED, PROJECT, READY
from tests.triggers.events import DOC, async_destination_record, pointer, run, statuses, timer_event


# ---- timer -------------------------------------------------------------------------------------------------------
def test_timer_payload_is_the_document(invoke, emu):
    result = run(invoke, timer_event(json.dumps(DOC)))
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"] == "nightly@2026-01-01T00:00:00Z"
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}


def test_timer_payload_may_be_a_bulk_array(invoke, emu):
    result = run(invoke, timer_event(json.dumps([DOC, {**DOC, "Id": FAILED, "DryRun": True}])))
    assert statuses(result) == ["updated", "dry_run"]


@pytest.mark.parametrize("payload", ["", "   ", None])
def test_timer_empty_payload_is_a_clear_error(invoke, emu, payload):
    [result] = run(invoke, timer_event(payload))["results"]
    assert result["status"] == "invalid" and result["error"]["code"] == "EmptyPayload"
    assert result["error"]["details"][0]["path"] == "/payload" and "payload" in result["error"]["message"]
    assert emu.calls() == []


def test_timer_payload_that_is_not_a_string(invoke):
    result = run(invoke, timer_event({"ProjectName": PROJECT}))
    assert statuses(result) == ["invalid"] and pointer(result) == "/payload"


def test_timer_payload_that_is_not_json(invoke):
    result = run(invoke, timer_event("batch-demo-ready"))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "NotJson"


# ---- async-destination records -------------------------------------------------------------------------------------
def test_async_destination_record_is_invalid_never_applied_never_http(invoke, emu):
    record = async_destination_record(json.dumps(DOC))
    assert not HttpSource().matches(record)
    result = run(invoke, record)
    assert "statusCode" not in result and statuses(result) == ["invalid"]
    assert result["results"][0]["error"]["code"] == "NotAnUpdateRequest"
    assert result["results"][0]["error"]["details"][0]["path"] == ""
    assert emu.calls() == []


def test_async_destination_record_with_http_like_request_context_is_still_not_http(invoke, emu):
    record = async_destination_record(json.dumps(DOC))
    record["requestContext"]["http"] = {"method": "POST", "path": "/"}
    result = run(invoke, record)
    assert "statusCode" not in result and statuses(result) == ["invalid"] and emu.calls() == []


# ---- garbage ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"null",
        b"[]",
        b"42",
        b'"a string"',
        b'{"events": []}',
        b'{"events": [{"eventSource": "acs:oss"}]}',
        b'{"events": [{"eventSource": "acs:oss", "eventName": 5}]}',
        b'{"events": ["x", {"eventSource": "acs:oss", "eventName": "ObjectCreated:PutObject", "oss": 1}]}',
        b'[{"type": "mns:Queue:SendMessage"}, 1]',
        b'{"type": "mns:Queue:SendMessage", "data": {"messageBody": 5}}',
        b'{"TopicOwner": 1, "Message": 2}',
        b'{"body": 1, "attrs": 2}',
        b'{"triggerTime": 1, "triggerName": 2, "payload": 3}',
        b'{"requestContext": {}, "requestPayload": 1}',
    ],
)
def test_garbage_events_answer_invalid_with_a_pointer_and_never_raise(invoke, emu, raw):
    result = invoke.direct(None, raw=raw)
    assert result["results"] and all(r["status"] == "invalid" for r in result["results"])
    assert all(r["error"]["details"] and "path" in r["error"]["details"][0] for r in result["results"])
    assert emu.calls() == []
