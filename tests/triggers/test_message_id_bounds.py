"""Message ids are taken from the event (an MNS MessageId, a CloudEvent id, an OSS eTag, a webhook-id, a timer's
name, an async-destination record's request id): whatever their size, none reaches a result, an outcome log line, a
sink notification or the HTTP answer longer than 1,280 characters (README "Outcomes", `sources.base.bounded_id`).
Ordinary ids stay exactly as they are, and ids that differ only at their end stay apart (de-duplication).

Every trigger, through handler.handler against the emulator, with the MNS topic sink on.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imm_batch_updater.webhooks import ReplayGuard
from tests.conftest import READY, examples, fc_context, signed_headers
from tests.triggers.events import (
    DOC,
    async_destination_record,
    cloud_event,
    oss_cloud_event,
    oss_event,
    oss_record,
    timer_event,
    topic_event,
)

BOUND = 1280  # README "Outcomes": a message id is at most 1,280 characters
BUCKET = "demo-bucket"
TOPIC = "imm-results"
KEY = "requests/bounded-ids.json"
BODY = json.dumps(DOC).encode()
# A key as long as OSS allows (1,023 characters) with an ETag as OSS writes it: the longest ordinary OSS id.
LONG_KEY = "requests/" + "k" * (1023 - len("requests/") - len(".json")) + ".json"

SOURCES = [
    "http",
    "direct",
    "mns_topic",
    "mns_topic_stream",
    "mns_queue",
    "mns_queue_event_id",
    "oss",
    "oss_eventbridge",
    "oss_eventbridge_refused",
    "timer",
    "async_destination",
]

_ASCII = string.ascii_letters + string.digits + "-_.:/@+=~%!*()"
ordinary_ids = st.one_of(
    st.uuids().map(str),
    st.just("C6DB2F5B0A1B4E6C-1-17B4F2E7A9C-200000001"),  # an MNS MessageId
    st.just("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),  # a webhook-id
    st.text(_ASCII, min_size=1, max_size=BOUND),  # anything up to the bound is left as it is
)


@st.composite
def long_ids(draw: Any, ascii_only: bool = False) -> str:
    """An id longer than the bound: a readable start, a long middle, an end of its own."""
    alphabet = _ASCII if ascii_only else _ASCII + "é中"
    head = draw(st.text(alphabet, min_size=1, max_size=40))
    middle = draw(st.sampled_from(alphabet)) * draw(st.integers(BOUND + 1, 120_000))
    tail = draw(st.text(alphabet, max_size=12))
    return head + middle + tail


@pytest.fixture
def bounded_env(fn_env, emu):
    emu.mns.create_topic(TOPIC)
    fn_env.setenv("RESULT_MNS_TOPIC", TOPIC)
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    emu.oss.put_object(BUCKET, KEY, BODY)
    return fn_env


def deliver(invoke: Any, sts: Any, kind: str, value: str) -> tuple[str, str]:
    """Run one event of trigger `kind` whose id is made of `value`: (the id the event carries, the answer as text)."""
    context = fc_context(sts)
    if kind == "http":
        headers = signed_headers(invoke.secret, BODY, msg_id=value)
        status, body, _ = invoke.post(body=BODY, headers=headers, sign=False)
        assert status == 200, body
        return value, json.dumps(body, ensure_ascii=False)
    if kind in ("direct", "mns_topic_stream"):  # FC's request id stands in
        context = fc_context(sts, request_id=value)
        event: Any = DOC if kind == "direct" else {"body": BODY.decode(), "attrs": {"Extend": "x"}}
        raw_id = value
    elif kind == "mns_topic":
        event, raw_id = topic_event(BODY.decode(), message_id=value), value
    elif kind == "mns_queue":
        event, raw_id = cloud_event(BODY.decode(), message_id=value), value
    elif kind == "mns_queue_event_id":  # no data.messageId: the CloudEvent's id
        event = cloud_event(BODY.decode())
        del event["data"]["messageId"]
        event["id"], raw_id = value, value
    elif kind in ("oss", "oss_eventbridge"):  # the eTag is the sender's
        record = oss_record(BUCKET, KEY, len(BODY), etag=value)
        event = oss_event(record) if kind == "oss" else oss_cloud_event(record)
        raw_id = f"oss://{BUCKET}/{KEY}@{value}"
    elif kind == "oss_eventbridge_refused":  # refused before the record is read: the CloudEvent's id
        event = oss_cloud_event(oss_record(BUCKET, KEY, len(BODY)), event_id=value, kind="oss:BucketCreated:PutBucket")
        raw_id = value
    elif kind == "timer":
        when = "2026-01-01T00:00:00Z"
        event, raw_id = timer_event(BODY.decode(), name=value, when=when), f"{value}@{when}"
    else:
        assert kind == "async_destination"
        event = async_destination_record(BODY.decode())
        event["requestContext"]["requestId"] = raw_id = value
    answer = invoke.direct(None, raw=json.dumps(event).encode(), context=context)
    return raw_id, json.dumps(answer, ensure_ascii=False)


def check_bounded(raw_id: str, long_part: str, answer: str, out: str, notifications: list[str]) -> list[str]:
    """The message ids the answer, the outcome lines and the notifications carry; asserts none echoes the long id."""
    results = json.loads(answer)
    results = results["results"] if "results" in results else []
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    outcomes = [line for line in lines if line.get("msg") == "outcome"]
    assert results and outcomes and notifications
    ids = [r["message_id"] for r in results] + [o["message_id"] for o in outcomes]
    for body in notifications:
        data = json.loads(body)["data"]
        ids += [r["message_id"] for r in data.get("results", [data.get("result")])]
    for text in [answer, out, *notifications]:
        assert long_part not in text  # never echoed whole, in any field
        assert raw_id not in text
    for line in out.splitlines():
        assert len(line) < BOUND + 3000, line[:200]
    for message_id in ids:
        assert len(message_id) <= BOUND
        assert message_id.startswith(raw_id[:1000])  # the readable start is kept, to search logs for
    assert len(set(ids)) == 1  # the same id everywhere
    return ids


def run_one(invoke: Any, emu: Any, sts: Any, capsys: Any, kind: str, value: str) -> tuple[str, str, str, list[str]]:
    capsys.readouterr()
    before = len(emu.mns.published(TOPIC))
    raw_id, answer = deliver(invoke, sts, kind, value)
    notifications = [m["body"] for m in emu.mns.published(TOPIC)[before:]]
    return raw_id, answer, capsys.readouterr().out, notifications


@pytest.mark.parametrize("kind", SOURCES)
@settings(
    max_examples=examples(8),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_source_bounds_a_long_message_id(bounded_env, invoke, emu, sts, capsys, kind, data):
    value = data.draw(long_ids(ascii_only=kind == "http"), label="id")
    raw_id, answer, out, notifications = run_one(invoke, emu, sts, capsys, kind, value)
    [message_id, *_] = check_bounded(raw_id, value, answer, out, notifications)
    assert message_id != raw_id
    # Deterministic: the same id gives the same bounded id in another invocation (redeliveries still match).
    if kind != "http":  # (an HTTP request with the same webhook-id and body is answered from the replay memory)
        again = run_one(invoke, emu, sts, capsys, kind, value)
        assert check_bounded(again[0], value, again[1], again[2], again[3])[0] == message_id
    # The whole id's digest is kept, so two ids that share the start (OSS: bucket and key) are told apart.
    assert hashlib.sha256(raw_id.encode()).hexdigest() in message_id


@pytest.mark.parametrize("kind", SOURCES)
@settings(max_examples=examples(8), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_ordinary_message_ids_are_unchanged(bounded_env, invoke, emu, sts, capsys, kind, data):
    value = data.draw(ordinary_ids, label="id")
    if kind in ("oss", "oss_eventbridge", "timer"):
        value = value[: BOUND - 100]  # the id holds more than this value (the bucket and key, the trigger time)
    invoke.app.sources.http.replay = ReplayGuard()  # an id drawn twice is applied again, not replayed
    raw_id, answer, out, notifications = run_one(invoke, emu, sts, capsys, kind, value)
    results = json.loads(answer)["results"]
    outcomes = [json.loads(line) for line in out.splitlines() if '"msg":"outcome"' in line]
    sent = [json.loads(body)["data"]["result"] for body in notifications]
    assert [r["message_id"] for r in results + outcomes + sent] == [raw_id] * 3


@pytest.mark.parametrize("kind", ["oss", "oss_eventbridge"])
def test_the_longest_ordinary_oss_id_is_unchanged(bounded_env, invoke, emu, kind):
    etag = emu.oss.put_object(BUCKET, LONG_KEY, BODY).etag
    record = oss_record(BUCKET, LONG_KEY, len(BODY), etag=etag)
    event = oss_event(record) if kind == "oss" else oss_cloud_event(record)
    [result] = invoke.direct(None, raw=json.dumps(event).encode())["results"]
    assert result["status"] == "updated"
    assert result["message_id"] == f"oss://{BUCKET}/{LONG_KEY}@{etag}"


def _long_pair(draw: Any) -> tuple[str, str]:
    base = draw(long_ids())
    a, b = draw(st.lists(st.sampled_from(_ASCII), min_size=2, max_size=2, unique=True))
    return base + a, base + b


@settings(max_examples=examples(20), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["mns_queue", "oss", "oss_eventbridge"]), data=st.data())
def test_long_ids_that_differ_at_the_end_stay_apart(bounded_env, invoke, emu, kind, data):
    first, second = _long_pair(data.draw)

    def delivery(*ids: str) -> list[dict[str, Any]]:
        if kind == "mns_queue":  # a batch push
            event: Any = [cloud_event(BODY.decode(), message_id=i) for i in ids]
        else:
            records = [oss_record(BUCKET, KEY, len(BODY), etag=i) for i in ids]
            event = oss_event(*records) if kind == "oss" else [oss_cloud_event(r) for r in records]
        return invoke.direct(None, raw=json.dumps(event).encode())["results"]

    apart = delivery(first, second)
    assert [r["status"] for r in apart] == ["updated", "updated"]
    assert not any(r.get("duplicate") for r in apart)
    assert apart[0]["message_id"] != apart[1]["message_id"]
    assert all(len(r["message_id"]) <= BOUND for r in apart)
    repeated = delivery(first, first)
    assert [r.get("duplicate", False) for r in repeated] == [False, True]
    assert repeated[0]["message_id"] == repeated[1]["message_id"] == apart[0]["message_id"]


def test_a_long_webhook_id_is_replayed_and_another_one_is_applied(bounded_env, invoke, emu):
    first, second = "msg_" + "w" * 5000 + "a", "msg_" + "w" * 5000 + "b"
    status, body, _ = invoke.post(body=BODY, headers=signed_headers(invoke.secret, BODY, msg_id=first), sign=False)
    assert status == 200 and len(body["results"][0]["message_id"]) <= BOUND
    reads = len(emu.calls(action="GetBatch"))
    again = invoke.post(body=BODY, headers=signed_headers(invoke.secret, BODY, msg_id=first), sign=False)
    assert again[0] == 200 and again[1] == body  # the sender's retry: answered from memory, IMM not called
    assert len(emu.calls(action="GetBatch")) == reads
    other = invoke.post(body=BODY, headers=signed_headers(invoke.secret, BODY, msg_id=second), sign=False)
    assert other[0] == 200 and other[1]["results"][0]["message_id"] != body["results"][0]["message_id"]
    assert len(emu.calls(action="GetBatch")) == reads + 1  # another id: applied (the batch read again)
    assert emu.imm.get_batch("demo-project", READY)["Tags"] == DOC["Tags"]
