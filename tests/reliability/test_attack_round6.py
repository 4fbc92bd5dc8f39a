"""Round 6 attack findings: the diff that skips normalising Tags that are not `==` (apply.py), and what it lets
through to the log line and the answers.

A GetBatch answer may hold a value nested deeper than orjson writes (255 levels) and than `strictjson.scrub`, the
fallback of the log line and of the HTTP answer, could walk: the SDK's `json.loads` and the strict-JSON answer
check take it. The diff used to normalise the batch's Tags whatever they held, so such a value raised
RecursionError before UpdateBatch (a `rejected` InternalError); it now compares them as they are, sends the update
and reports the value in `diff.Tags.from`, and the log line then raised out of the handler, after the update was
made, with no answer and no outcome logged.
"""

from __future__ import annotations

import json

import pytest

from imm_batch_updater import logs, strictjson
from tests.conftest import PROJECT, READY


def _nested(depth: int) -> list:
    value: list = ["x"]
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("via", ["direct", "http"])
def test_a_batch_holding_a_very_deep_tag_value_is_updated_answered_and_logged(invoke, emu, capsys, via):
    body = json.dumps({"RequestId": "R-1", "Batch": {"Id": READY, "State": "Ready", "Tags": {"k": _nested(700)}}})
    emu.faults.inject("GetBatch", "answer", count=None, status=200, body=body.encode())
    document = {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "y"}}
    if via == "direct":
        [result] = invoke.direct(document)["results"]
    else:
        status, answer, _ = invoke.post(document)
        [result] = answer["results"]
        assert status == 200
    assert result["status"] == "updated" and result["diff"]["Tags"]["to"] == {"k": "y"}
    assert len(emu.calls(action="UpdateBatch")) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    [outcome] = [line for line in lines if line.get("msg") == "outcome"]
    assert outcome["status"] == "updated"


def test_the_fallbacks_write_values_nested_deeper_than_any_encoder_goes():
    deep = {"a": _nested(5000)}
    written = json.loads(strictjson.dumps(deep))  # strict JSON, deep levels cut off (as null)
    assert isinstance(written["a"], list)
    lines: list[str] = []

    class Stream:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    logs.write_all([{"ts": "t", "level": "INFO", "msg": "m", "deep": _nested(5000)}], Stream())
    assert json.loads("".join(lines))["msg"] == "m"
