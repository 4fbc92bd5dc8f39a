"""The log sink: one JSON object per line on stdout per outcome, with the fields operators need."""

from __future__ import annotations

import io
import json
from typing import NamedTuple

import pytest

from imm_batch_updater import logs, strictjson
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


def strict(line):
    decoded = strictjson.decode(line)  # NaN, Infinity, duplicate keys and lone surrogates become faults
    assert decoded.faults == ()
    return decoded.value


class _Detail(NamedTuple):
    field: str
    rule: str


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("d\u00e9j\u00e0", "d\u00e9j\u00e0"),  # non-ASCII as itself
        (float("nan"), None),  # strict JSON has no NaN
        (float("inf"), None),
        ("a\ud800b", "a\ufffdb"),  # a lone surrogate (orjson refuses it): the scrubbed fallback line
        (2**70, 2**70),  # beyond orjson's 64 bits: the fallback line keeps the number
        (_Detail("Id", "pattern"), ["Id", "pattern"]),  # a NamedTuple as the standard encoder writes it
        (object, str(object)),  # anything else as its str()
    ],
)
def test_every_line_is_strict_json_whatever_it_is_given(value, expected):
    out = io.StringIO()
    logs.write_all([{"ts": "t", "msg": "m", "v": value}, {"ts": "t", "msg": "second"}], out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert strict(lines[0]) == {"ts": "t", "msg": "m", "v": expected}
    assert strict(lines[1]) == {"ts": "t", "msg": "second"}


def test_a_stdout_that_cannot_carry_utf8_gets_ascii_lines():
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    logs.write_all([{"ts": "t", "msg": "m", "v": "d\u00e9j\u00e0"}], out)
    line = raw.getvalue().decode("ascii")
    assert line.endswith("\n") and strict(line) == {"ts": "t", "msg": "m", "v": "d\u00e9j\u00e0"}
