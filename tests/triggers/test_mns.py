"""MNS topic (JSON and STREAM formats) and MNS queue (EventBridge CloudEvents) through handler.handler."""

from __future__ import annotations

import base64
import json
import textwrap

from tests.conftest import FAILED, PROJECT, READY, RUNNING
from tests.triggers.events import DOC, b64, cloud_event, pointer, run, statuses, topic_event


# ---- MNS topic ---------------------------------------------------------------------------------------------------
def test_topic_json_format_with_attributes_merged_at_top_level(invoke, emu):
    result = run(invoke, topic_event(json.dumps(DOC), Extend='{"k":"v"}', source="ci"))
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"] == "MID-1"
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}


def test_topic_base64_message(invoke, emu):
    result = run(invoke, topic_event(b64(DOC)))
    assert statuses(result) == ["updated"]
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}


def test_topic_base64_wrapped_at_76_columns_and_url_safe(invoke):
    wrapped = "\n".join(textwrap.wrap(b64([DOC, {**DOC, "Id": FAILED}]), 76))
    assert "\n" in wrapped
    assert statuses(run(invoke, topic_event(wrapped))) == ["updated", "updated"]
    url_safe = base64.urlsafe_b64encode(json.dumps({**DOC, "Tags": {"k": "??>>"}}).encode()).decode().rstrip("=")
    assert "_" in url_safe or "-" in url_safe
    assert statuses(run(invoke, topic_event(url_safe))) == ["updated"]


def test_topic_stream_format_with_attributes(invoke, emu):
    event = {"body": json.dumps([DOC, {**DOC, "Id": FAILED}]), "attrs": {"Extend": '{"k":"v"}'}}
    result = run(invoke, event)
    assert statuses(result) == ["updated", "updated"]
    assert emu.imm.get_batch(PROJECT, FAILED)["Tags"] == {"via": "trigger"}


def test_topic_stream_format_with_attributes_and_base64_body(invoke):
    assert statuses(run(invoke, {"body": b64(DOC), "attrs": {}})) == ["updated"]


def test_topic_stream_without_attributes_is_the_raw_body(invoke, emu):
    """STREAM without attributes delivers the bare body: it is a direct invocation for the function."""
    result = invoke.direct(None, raw=json.dumps(DOC).encode())
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"]  # FC's request id


def test_topic_stream_without_attributes_may_be_base64(invoke, emu):
    """The contract: the STREAM body may be base64 of the document; without attributes that is the whole event."""
    result = invoke.direct(None, raw=b64({**DOC, "Tags": {"via": "stream-b64"}}).encode())
    assert statuses(result) == ["updated"]
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "stream-b64"}
    result = invoke.direct(None, raw=base64.b64encode(b"not json inside").decode().encode())
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "NotJson"


def test_topic_message_neither_json_nor_base64_is_invalid_as_a_whole_document(invoke, emu):
    """The contract: path "" for a body that is not JSON at all; the message says where the body was in the event."""
    result = run(invoke, topic_event("definitely not json"))
    assert statuses(result) == ["invalid"] and pointer(result) == ""
    assert "base64" in result["results"][0]["error"]["message"]
    assert "(/Message)" in result["results"][0]["error"]["details"][0]["message"]
    assert emu.calls(service="imm") == []


def test_topic_base64_of_something_that_is_not_json_is_invalid(invoke):
    event = topic_event(base64.b64encode(b"<xml>not json</xml>").decode())
    result = run(invoke, event)
    assert statuses(result) == ["invalid"] and pointer(result) == ""


def test_topic_empty_or_wrongly_typed_message(invoke):
    assert pointer(run(invoke, topic_event(""))) == "/Message"
    result = run(invoke, {**topic_event(""), "Message": {"ProjectName": PROJECT}})
    assert pointer(result) == "/Message" and "not a string" in result["results"][0]["error"]["message"]
    assert pointer(run(invoke, {"body": None, "attrs": {}})) == "/body"


def test_topic_schema_errors_point_into_the_document(invoke):
    result = run(invoke, topic_event(json.dumps({**DOC, "Actions": [{"Name": 7}]})))
    assert statuses(result) == ["invalid"] and pointer(result) == "/Actions/0/Name"


# ---- MNS queue through EventBridge ---------------------------------------------------------------------------------
def test_queue_single_event_with_base64_body(invoke, emu):
    result = run(invoke, cloud_event(b64(DOC)))
    assert statuses(result) == ["updated"] and result["results"][0]["message_id"] == "M1"
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}


def test_queue_batch_push_array(invoke, emu):
    events = [cloud_event(json.dumps({**DOC, "Id": FAILED, "Resume": True}), "A"), cloud_event(b64(DOC), "B")]
    result = run(invoke, events)
    assert statuses(result) == ["updated", "updated"] and [r["message_id"] for r in result["results"]] == ["A", "B"]
    assert result["results"][0]["resumed"] is True and emu.imm.get_batch(PROJECT, FAILED)["State"] == "Running"


def test_queue_recognised_by_type_whatever_the_source(invoke):
    for source in ("acs:mns", "MNS-other-fn-trigger", None):
        event = {**cloud_event(json.dumps(DOC)), "source": source}
        assert statuses(run(invoke, event)) == ["updated"], source


def test_queue_message_id_falls_back_to_the_cloudevent_id(invoke):
    event = cloud_event(json.dumps(DOC))
    del event["data"]["messageId"]
    assert run(invoke, event)["results"][0]["message_id"] == "ev-M1"


def test_queue_bad_items_are_invalid_at_their_pointer_and_the_rest_is_applied(invoke, emu):
    no_body = cloud_event("x", "B")
    del no_body["data"]["messageBody"]
    no_data = {**cloud_event("x", "C"), "data": "not an object"}
    bad_b64 = cloud_event("eyJQcm9qZWN0TmFtZSI6%%%", "D")
    events = [cloud_event(json.dumps(DOC), "A"), no_body, no_data, bad_b64, {"type": "something:else"}]
    result = run(invoke, events)
    assert statuses(result) == ["updated", "invalid", "invalid", "invalid", "invalid"]
    # A malformed event item (no body, no data, unknown type) has no document: its pointer is into the event. A
    # body that is not JSON is a document that is not JSON: path "", the event location in the message.
    assert [pointer(result, i) for i in range(1, 5)] == ["/1/data/messageBody", "/2/data", "", "/4"]
    assert "(/3/data/messageBody)" in result["results"][3]["error"]["details"][0]["message"]
    assert len(emu.calls(action="UpdateBatch")) == 1


def test_queue_batch_with_only_final_failures_does_not_raise(invoke, emu):
    events = [
        cloud_event(json.dumps({**DOC, "Id": RUNNING}), "A"),  # conflict
        cloud_event(json.dumps({**DOC, "Id": "batch-missing"}), "B"),  # not_found
        cloud_event("{", "C"),  # invalid
    ]
    assert statuses(run(invoke, events)) == ["conflict", "not_found", "invalid"]
