"""Fixes from a new user's review: delivery order across fan-out, selections that converge under retries, bounded
error details, every outcome logged, secrets checked, config-object keys and bucket names checked."""

from __future__ import annotations

import json

import pytest

import handler
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import PROJECT, READY, fc_context, http_event, new_secret
from tests.fleet.selections import FLEET, QUEUE


@pytest.fixture
def work_queue(work_queue, fn_env):
    """The shared work queue (tests/conftest.py), with selections of more than 2 batches fanned out."""
    fn_env.setenv("FANOUT_BATCHES", "2")
    return work_queue


def test_a_selection_is_not_fanned_out_when_another_document_of_the_delivery_targets_its_batches(
    invoke, emu, work_queue, sts
):
    ids = emu.imm.create_batches(FLEET, 5, state="Ready", tags={"t": "x"})
    bulk = [
        {"ProjectName": FLEET, "Selector": {"State": "Ready"}, "Tags": {"order": "selector-first"}},
        {"ProjectName": FLEET, "Id": ids[0], "Tags": {"order": "id-last"}},
    ]
    result = invoke.direct(bulk)["results"]
    assert {r["status"] for r in result} == {"updated"}  # applied here, in delivery order: nothing queued
    assert emu.mns.queue_messages(QUEUE) == []
    assert emu.imm.get_batch(FLEET, ids[0])["Tags"] == {"order": "id-last"}  # the last document wins
    assert emu.imm.get_batch(FLEET, ids[1])["Tags"] == {"order": "selector-first"}


def test_disjoint_selections_in_one_delivery_still_fan_out(invoke, emu, work_queue):
    emu.imm.create_batches(FLEET, 4, state="Ready", tags={"t": "a"})
    emu.imm.create_batches(FLEET, 4, state="Ready", tags={"t": "b"})
    bulk = [
        {"ProjectName": FLEET, "Selector": {"TagSelector": "t=a"}, "Tags": {"t": "a", "x": "1"}},
        {"ProjectName": FLEET, "Selector": {"TagSelector": "t=b"}, "Tags": {"t": "b", "x": "2"}},
    ]
    result = invoke.direct(bulk)["results"]
    assert [r["status"] for r in result] == ["queued"] * 8


def test_a_selection_retried_by_the_platform_converges_under_imm_max_qps(invoke, emu, fn_env):
    """Batches the listing shows already holding the requested values are not sent again, so each redelivery of a
    selection that does not fit one invocation gets further, until every batch is updated."""
    fn_env.setenv("IMM_MAX_QPS", "10")
    ids = emu.imm.create_batches(FLEET, 30, state="Ready", tags={"k": "old"})
    document = {"ProjectName": FLEET, "Selector": {"TagSelector": "k=old"}, "Tags": {"k": "old", "n": "1"}}
    for delivery in range(10):  # noqa: B007 -- the count is checked after the loop
        try:
            result = invoke.direct(document, context=fc_context(invoke.sts, timeout=2.0))
            break
        except DeliveryIncomplete:
            continue
    else:
        raise AssertionError("the selection never completed")
    assert delivery >= 1  # it did not fit one invocation
    assert all(emu.imm.get_batch(FLEET, b)["Tags"] == {"k": "old", "n": "1"} for b in ids)
    unchanged = [r for r in result["results"] if r.get("unchanged")]
    assert unchanged and all(r["status"] == "updated" and r["diff"] == {} for r in unchanged)


def test_a_batch_already_holding_the_values_is_not_sent_again_after_a_precheck(invoke, emu):
    document = {"ProjectName": PROJECT, "Id": READY, "Tags": {"same": "1"}}
    invoke.direct(document)
    calls = len(emu.calls(action="UpdateBatch"))
    [again] = invoke.direct(document)["results"]
    assert again["status"] == "updated" and again["unchanged"] is True and again["diff"] == {}
    assert len(emu.calls(action="UpdateBatch")) == calls


def test_error_details_are_bounded_and_keys_are_not_echoed_whole(invoke, emu, fn_env):
    fn_env.setenv("HTTP_AUTH", "none")
    huge_key = "k" * 100_000
    body = json.dumps({"ProjectName": PROJECT, "Id": READY, "Tags": {"a": "b"}, huge_key: 1}).encode()
    status, answer, _ = invoke.post(body=body, sign=False)
    assert status == 400 and len(json.dumps(answer)) < 2_000
    many = {"ProjectName": PROJECT, "Id": READY, "Actions": [{"Name": "x", "Parameters": ["\n"] * 100}] * 20}
    status, answer, _ = invoke.post(body=json.dumps([many] * 40).encode(), sign=False)
    assert status == 400
    details = answer["results"][0]["error"]["details"]
    assert len(details) <= 20 and "more" in details[-1]["message"]
    assert len(json.dumps(answer)) < 400_000


def test_an_oversized_http_body_is_an_outcome_in_the_log(invoke, emu, fn_env, capsys):
    fn_env.setenv("MAX_BODY_BYTES", "2048")
    status, answer, _ = invoke.post(body=b"[" + b" " * 4000 + b"]")
    assert status == 400 and answer["results"][0]["error"]["code"] == "TooLarge"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"outcome"' in line]
    assert [(line["status"], line["error_code"]) for line in lines] == [("invalid", "TooLarge")]


def test_an_invalid_documents_log_line_names_the_fields(invoke, emu, capsys):
    invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"a": "b"}, "Resum": True})
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"outcome"' in line]
    assert line["error_details"] == [{"path": "/Resum", "message": "unknown field (not allowed here)"}]


@pytest.mark.parametrize("secret", ["plainpassword", "whsec_AAAA", "whsec_%%%"])
def test_a_malformed_webhook_secret_is_refused_with_a_warning(invoke, emu, fn_env, capsys, secret):
    good = new_secret()
    fn_env.setenv("WEBHOOK_SECRET", f"{secret} {good}")
    from imm_batch_updater.config import Settings

    settings = Settings.current()
    assert settings.webhook_secrets == (good,)
    assert any("WEBHOOK_SECRET" in w for w in settings.warnings)


@pytest.mark.parametrize("key", ["a\u0000b", "a\rb", "a\tb", "x\u0085", "a\u007fb"])
def test_a_source_key_with_control_characters_is_invalid_and_never_read(invoke, emu, key):
    [result] = invoke.direct({"Source": "oss://demo-bucket/" + key})["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == "/Source"
    assert emu.calls(service="oss") == []


@pytest.mark.parametrize("bucket", ["Bad_Bucket", "../x", "a", "x" * 64])
def test_an_oss_event_with_an_impossible_bucket_name_points_at_the_bucket(invoke, emu, bucket):
    from tests.triggers.events import oss_event, oss_record, run

    [result] = run(invoke, oss_event(oss_record(bucket, "updates/a.json")))["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == "/events/0/oss/bucket/name"
    assert emu.calls(service="oss") == []


def test_an_http_event_that_is_not_utf8_is_still_answered_as_http(invoke, emu):
    event = http_event("POST", "/", b"{}", {}).replace(b'"body": "{}"', b'"body": "\xed\xb2\x80"')
    response = handler.handler(event, fc_context(invoke.sts))
    assert response["statusCode"] == 401 and emu.calls(service="imm") == []


def test_max_batches_as_a_float_is_reported_as_an_integer(invoke, emu):
    emu.imm.create_batches(FLEET, 3, state="Ready", tags={"t": "f"})
    [result] = invoke.direct({"ProjectName": FLEET, "Selector": {"TagSelector": "t=f"}, "Tags": {}, "MaxBatches": 2.0})[
        "results"
    ]
    assert result["error"]["code"] == "TooManyBatches" and "(2)" in result["error"]["message"]


@pytest.mark.parametrize("document", [None, 7, "text", []])
def test_a_document_that_is_not_an_object_says_so_at_the_top(invoke, emu, document):
    [result] = invoke.direct([document] if document != [] else [[]])["results"]
    assert [d["path"] for d in result["error"]["details"]] == [""]


def test_a_bad_imm_project_is_a_configuration_warning_not_a_document_error(invoke, emu, fn_env):
    fn_env.setenv("IMM_PROJECT", "bad project!")
    from imm_batch_updater.config import Settings

    settings = Settings.current()
    assert settings.imm_project is None and any("IMM_PROJECT" in w for w in settings.warnings)
