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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imm_batch_updater import logs, strictjson
from tests.conftest import PROJECT, READY, examples

FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


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


# -- answers whose shape the SDK's response models do not expect -------------------------------------------------
# `DaraCore.from_map` swallows a mapping error and leaves the response model half built (`body` None): the function
# read `response.body.request_id` from it, so a GetBatch answer with an Actions item that is not an object (or a
# FastFailPolicy that is a list) raised AttributeError and ended as a final `rejected` InternalError. What the
# function reads now comes from the checked answer body itself; a generator puts odd shapes in every member.
ODD = st.recursive(
    st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["Name", "OSS", "x"]), inner)),
    max_leaves=6,
)
MEMBERS = ["Actions", "Input", "Tags", "Notification", "FastFailPolicy", "CreateTime", "Reason", "Details"]


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=examples(60))
@given(member=st.sampled_from(MEMBERS), value=ODD, in_action=st.booleans())
def test_an_answer_the_sdk_models_cannot_map_is_still_read_from_what_imm_sent(invoke, emu, member, value, in_action):
    emu.faults.clear()
    batch: dict = {"Id": READY, "State": "Ready"}
    if in_action:  # inside an Actions item, where the SDK maps FastFailPolicy and Parameters
        batch["Actions"] = [{"Name": "doc/convert", member: value}, value]
    else:
        batch[member] = value
    emu.faults.inject(
        "GetBatch", "answer", count=None, status=200, body=json.dumps({"RequestId": "R-G", "Batch": batch}).encode()
    )
    emu.faults.inject(
        "UpdateBatch", "answer", count=None, status=200, body=json.dumps({"RequestId": "R-U", member: value}).encode()
    )
    before = len(emu.calls(action="UpdateBatch"))
    [result] = invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"odd": "1"}})["results"]
    emu.faults.clear()
    assert result["status"] == "updated", result
    assert result["request_id"] == "R-U" and "diff" in result
    assert len(emu.calls(action="UpdateBatch")) == before + 1


def test_a_listing_the_sdk_models_cannot_map_is_still_read_from_what_imm_sent(invoke, emu):
    odd = {"Id": READY, "State": "Ready", "Actions": [5, {"Name": "a", "FastFailPolicy": []}], "Tags": {"t": "1"}}
    body = {"RequestId": "R-L", "Batches": [odd]}
    emu.faults.inject("ListBatches", "answer", count=None, status=200, body=json.dumps(body).encode())
    results = invoke.direct({"ProjectName": PROJECT, "Selector": {"TagSelector": "t=1"}, "Tags": {"t": "1", "n": "2"}})
    emu.faults.clear()
    [result] = results["results"]
    assert result["status"] == "updated" and result["batch_id"] == READY, result
    assert result["diff"]["Tags"]["from"] == {"t": "1"}
