"""An FC async-destination record carried as a document, by any trigger, gets the answer the record gets as an
event: `invalid`, `NotAnUpdateRequest`, never applied from `requestPayload`.

This is what an `onFailure` destination that is an MNS topic or queue feeding the function delivers (and what an
operator replaying dead letters by hand may send). It used to be a plain `SchemaViolation` listing the record's keys
as unknown update fields, which hid what it was.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PROJECT, READY, examples
from tests.triggers.events import async_destination_record, b64, cloud_event, oss_event, oss_record, run, timer_event
from tests.triggers.events import topic_event as mns_topic_event

UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"from": "requestPayload"}}
RECORD = async_destination_record(json.dumps(UPDATE))
TRIGGERS = ["direct", "bulk item", "mns topic", "mns topic base64", "mns queue", "timer", "http", "oss object"]


def deliver(invoke, emu, trigger: str, record: dict) -> list[dict]:
    text = json.dumps(record)
    if trigger == "direct":
        return invoke.direct(record)["results"]
    if trigger == "bulk item":
        return invoke.direct([record])["results"]
    if trigger == "mns topic":
        return run(invoke, mns_topic_event(text))["results"]
    if trigger == "mns topic base64":
        return run(invoke, mns_topic_event(b64(record)))["results"]
    if trigger == "mns queue":
        return run(invoke, [cloud_event(text, "Q1")])["results"]
    if trigger == "timer":
        return run(invoke, timer_event(text))["results"]
    if trigger == "http":
        _, body, _ = invoke.post(record)
        return body["results"]
    assert trigger == "oss object"
    etag = emu.oss.put_object("demo-bucket", "requests/record.json", text.encode()).etag
    return run(invoke, oss_event(oss_record("demo-bucket", "requests/record.json", len(text), etag=etag)))["results"]


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    trigger=st.sampled_from(TRIGGERS),
    condition=st.sampled_from(["UnhandledInvocationError", "HandledInvocationError", "Success", "Throttled"]),
    keep=st.sets(st.sampled_from(["requestPayload", "responsePayload"]), min_size=1),
)
def test_a_destination_record_is_not_an_update_whatever_carries_it(invoke, emu, trigger, condition, keep):
    record = {k: v for k, v in RECORD.items() if k in keep or k not in ("requestPayload", "responsePayload")}
    record["requestContext"] = {**record["requestContext"], "condition": condition}
    before = emu.imm.get_batch(PROJECT, READY)["Tags"]
    [result] = deliver(invoke, emu, trigger, record)
    assert result["status"] == "invalid", result
    assert result["error"]["code"] == "NotAnUpdateRequest", result
    assert result["error"]["details"] == [{"path": "", "message": result["error"]["message"]}]
    assert "requestPayload" in result["error"]["message"]
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == before  # never applied


def test_a_document_with_only_a_request_context_is_still_a_schema_violation(invoke):
    """Not a record: a `requestContext` alone is just an unknown key of an update document."""
    [result] = invoke.direct({**UPDATE, "requestContext": {}})["results"]
    assert result["status"] == "invalid" and result["error"]["code"] == "SchemaViolation"
    assert result["error"]["details"][0]["path"] == "/requestContext"
