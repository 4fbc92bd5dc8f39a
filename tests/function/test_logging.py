"""The log sink: one JSON object per line on stdout per outcome, with the fields operators need."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imm_batch_updater import logs, strictjson
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import PROJECT, READY, RUNNING, examples, fc_context


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


# -- a stdout with a file descriptor: the line goes to it as bytes (logs._utf8_fd) ----------------------------------
def _pipe_stream(encoding="utf-8"):
    read_fd, write_fd = os.pipe()
    return os.fdopen(read_fd, "rb"), io.TextIOWrapper(io.FileIO(write_fd, "w"), encoding=encoding)


@pytest.mark.parametrize("value", ["d\u00e9j\u00e0", "a\ud800b", float("nan"), 2**70, "\u2028", "x" * 100_000])
def test_a_real_stdout_gets_the_same_lines_after_what_was_written_before(value):
    reader, out = _pipe_stream()
    expected = io.StringIO()
    records = [{"ts": "t", "msg": "m", "v": value}, {"ts": "t", "msg": "second"}]
    logs.write_all(records, expected)  # the text path (a StringIO has no descriptor)
    with reader:
        out.write("before\n")  # in the stream's buffer, not flushed: it must not come after the log lines
        got: list[bytes] = []
        drain = threading.Thread(target=lambda: got.append(reader.read()))  # a 100 kB line fills a pipe
        drain.start()
        logs.write_all(records, out)
        out.close()
        drain.join(10)
    assert got[0].decode("utf-8") == "before\n" + expected.getvalue()


def test_a_write_that_takes_part_of_the_line_is_completed(monkeypatch):
    reader, out = _pipe_stream()
    real_write = os.write
    monkeypatch.setattr(logs.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))  # 7 bytes at a time
    with reader:
        logs.write_all([{"ts": "t", "msg": "partial", "v": "d\u00e9j\u00e0" * 20}], out)
        out.close()
        line = reader.read().decode("utf-8")
    assert strict(line) == {"ts": "t", "msg": "partial", "v": "d\u00e9j\u00e0" * 20} and line.endswith("\n")


def test_a_real_stdout_in_another_encoding_keeps_the_ascii_lines():
    reader, out = _pipe_stream("latin-1")
    with reader:
        logs.write_all([{"ts": "t", "msg": "m", "v": "d\u00e9j\u00e0 \u4e2d"}], out)
        out.close()
        line = reader.read().decode("ascii")  # \u escapes only: any reader of any encoding gets the same line
    assert strict(line) == {"ts": "t", "msg": "m", "v": "d\u00e9j\u00e0 \u4e2d"}


@settings(max_examples=examples(300), deadline=None)
@given(now=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))  # up to 2100-01-01
def test_the_timestamp_is_the_utc_time_to_the_millisecond(now):
    """`ts`: "%Y-%m-%dT%H:%M:%S.mmmZ" of the time the line is written, the milliseconds truncated (logs.timestamp
    takes them from a table and caches the seconds' text: the same text as formatting it whole)."""
    import unittest.mock

    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    with unittest.mock.patch.object(logs.time, "time", return_value=now):
        assert logs.timestamp() == expected
        assert logs.timestamp() == expected  # the second from the cache
