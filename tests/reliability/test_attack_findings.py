"""Findings of an adversarial review: each test fails on the code as it was reviewed."""

from __future__ import annotations

import json

import handler
from tests.conftest import PROJECT, READY, fc_context, http_event, signed_headers


def test_webhook_timestamp_too_large_for_a_float_is_401(invoke):
    """A webhook-timestamp of 400 digits parses as int but overflows float arithmetic: must be a 401, not a
    crash or an InternalError 422."""
    body = json.dumps({"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}}).encode()
    headers = signed_headers(invoke.secret, body)
    headers["webhook-timestamp"] = "1" + "0" * 400
    event = http_event("POST", "/", body, headers)
    response = handler.handler(event, fc_context(invoke.sts))
    assert response["statusCode"] == 401, response


def test_tag_value_true_is_not_the_number_1(invoke, emu):
    """A batch holding Tags {"flag": true} asked for Tags {"flag": 1}: UpdateBatch must be called (1 is not true)."""
    invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"flag": True}})
    before = len(emu.calls(action="UpdateBatch"))
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"flag": 1}})["results"][0]
    assert result["status"] == "updated"
    assert len(emu.calls(action="UpdateBatch")) == before + 1, result
    assert result.get("diff") == {"Tags": {"from": {"flag": True}, "to": {"flag": 1}}}


def test_dry_run_reports_bool_to_number_change(invoke, emu):
    invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"flag": False}})
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"flag": 0}, "DryRun": True})["results"][0]
    assert result["status"] == "dry_run"
    assert result["diff"] == {"Tags": {"from": {"flag": False}, "to": {"flag": 0}}}


def _one(invoke, document):
    status, answer, _ = invoke.post(document)
    return [dict(r, http=status) for r in answer["results"]]


def test_getbatch_state_that_is_not_a_string_is_failed_not_rejected(invoke, emu):
    """Only IMM's answer counts: a GetBatch whose Batch.State is a list is not IMM's answer -> failed (retried)."""
    body = json.dumps({"RequestId": "r-1", "Batch": {"Id": READY, "State": ["Ready"]}}).encode()
    emu.faults.inject("GetBatch", "answer", count=None, status=200, body=body)
    [result] = _one(invoke, {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}, "DryRun": True})
    assert (result["status"], result["http"]) == ("failed", 502), result
    assert result["error"]["code"] == "InvalidResponse"


def test_listbatches_state_that_is_not_a_string_is_failed_not_rejected(invoke, emu):
    body = json.dumps({"RequestId": "r-1", "Batches": [{"Id": READY, "State": {"x": 1}}]}).encode()
    emu.faults.inject("ListBatches", "answer", count=None, status=200, body=body)
    [result] = _one(
        invoke, {"ProjectName": PROJECT, "Selector": {"State": "Ready"}, "Tags": {"k": "v"}, "DryRun": True}
    )
    assert (result["status"], result["http"]) == ("failed", 502), result
    assert result["error"]["code"] == "InvalidResponse"


def test_update_answer_whose_request_id_is_a_lone_surrogate_is_not_imms(invoke, emu):
    """A success is a JSON object carrying RequestId *made only of strict JSON*."""
    emu.faults.inject("UpdateBatch", "answer", count=None, status=200, body=b'{"RequestId": "\\ud800"}')
    [result] = _one(invoke, {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}})
    assert (result["status"], result["http"]) == ("failed", 502), result


def test_revert_undoes_an_update_whose_resume_failed(invoke, emu):
    """An update that IMM applied but whose ResumeBatch failed (throttled: the platform redelivers) carries the
    only `diff` of the change; the redelivery finds the values already there (diff {}). Reverting the results of
    both must still put the batch back."""
    from devtools.revert import revert_documents
    from tests.conftest import FAILED

    before = emu.imm.get_batch(PROJECT, FAILED)["Tags"]
    doc = {"ProjectName": PROJECT, "Id": FAILED, "Tags": {"changed": "yes"}, "Resume": True}
    emu.faults.inject("ResumeBatch", "throttle", count=None, status=429)
    status, first, _ = invoke.post(doc)
    assert status == 429 and first["results"][0]["status"] == "throttled"
    emu.faults.clear()
    status, second, _ = invoke.post(doc)
    assert status == 200 and second["results"][0]["status"] == "updated"
    documents, _ = revert_documents(first["results"] + second["results"])
    assert documents == [{"ProjectName": PROJECT, "Id": FAILED, "Tags": before}]


def test_last_write_wins_across_an_id_and_a_selector_in_one_delivery(invoke, emu):
    """[Id X: v=1, Selector matching X: v=<X's current value>]: the selector document comes last, so X must end
    with it. The selector's listing was made before the first document changed X; its stale view must not make the
    second document look `unchanged` (skipped)."""
    project = "lww-project"
    [batch_id] = emu.imm.create_batches(project, 1, state="Ready", tags={"v": "0", "sel": "yes"})
    delivery = [
        {"ProjectName": project, "Id": batch_id, "Tags": {"v": "1", "sel": "yes"}},
        {"ProjectName": project, "Selector": {"TagSelector": "sel=yes"}, "Tags": {"v": "0", "sel": "yes"}},
    ]
    results = invoke.direct(delivery)["results"]
    assert [r["status"] for r in results] == ["updated", "updated"], results
    assert emu.imm.get_batch(project, batch_id)["Tags"] == {"v": "0", "sel": "yes"}, results


def test_an_empty_tag_value_is_a_value(invoke, emu):
    """Tags are replaced wholesale: {"a": ""} is not {} (an empty string is a tag value IMM keeps), so neither may
    be skipped as `unchanged` when the batch holds the other."""
    invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"a": ""}})
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"a": ""}
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {}})["results"][0]
    assert result["status"] == "updated" and not result.get("unchanged"), result
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {}
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"a": ""}})["results"][0]
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"a": ""}, result


def test_an_invalid_document_does_not_echo_a_name_field_that_is_not_a_name(invoke):
    """Values are never echoed: an Id/ProjectName that fails the schema's name pattern (here: a sentence holding a
    password) is not repeated in the `invalid` result as its project/batch_id."""
    doc = {"ProjectName": "token = hunter2 secret", "Id": "password: hunter2", "Tags": {"k": "v"}}
    status, answer, _ = invoke.post(doc)
    [result] = answer["results"]
    assert status == 400 and result["status"] == "invalid"
    assert "hunter2" not in json.dumps(answer), result


def test_a_dict_event_nested_too_deeply_to_encode_is_refused_not_raised():
    """Local runs may pass a dict (FC passes bytes): one nested beyond the encoder's recursion is refused."""
    event: dict = {}
    inner = event
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    result = handler.handler(event, fc_context(None))
    assert [r["status"] for r in result["results"]] == ["invalid"]
