"""The log sink: one JSON object per line on stdout per outcome, with the fields operators need."""

from __future__ import annotations

import json

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import PROJECT, READY, RUNNING, fc_context


def lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_one_json_line_per_outcome(invoke, capsys, sts):
    context = fc_context(sts, request_id="req-123")
    docs = [
        {"ProjectName": PROJECT, "Id": READY, "Tags": {"a": "1"}},
        {"ProjectName": PROJECT, "Id": RUNNING, "Tags": {"a": "1"}},
    ]
    invoke.direct(docs, context=context)
    records = [r for r in lines(capsys) if r["msg"] == "outcome"]
    assert [r["status"] for r in records] == ["updated", "conflict"]
    first = records[0]
    for key in ("ts", "level", "request_id", "function", "source", "project", "batch_id", "attempts", "duration_ms"):
        assert key in first, key
    assert first["request_id"] == "req-123" and first["source"] == "direct" and first["attempts"] == 2
    assert records[1]["error_code"] == "BatchStateConflict" and records[1]["level"] == "WARNING"


def test_not_final_outcomes_are_logged_before_the_raise(invoke, emu, capsys):
    emu.faults.inject("GetBatch", "unavailable", count=None)
    with pytest.raises(DeliveryIncomplete):
        invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"a": "1"}})
    [record] = [r for r in lines(capsys) if r["msg"] == "outcome"]
    assert record["status"] == "failed" and record["final"] is False and record["level"] == "ERROR"


def test_invalid_input_is_logged_without_its_content(invoke, capsys):
    invoke.direct(None, raw=b'{"ProjectName": "p", "Id": "b", "Tags": {"pw": ["hunter2-secret"]}}')
    out = capsys.readouterr().out
    assert "hunter2-secret" not in out and json.loads(out.splitlines()[-1])["status"] == "invalid"
