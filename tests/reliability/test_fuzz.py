"""Fuzzing: random bytes, random JSON and near-miss trigger events through handler.handler.

Never an uncaught exception, never an IMM call, always a well-formed answer. The `ci` hypothesis profile runs
EVENTS_PER_SHAPE examples per shape (well over 10,000 events in all); HYPOTHESIS_PROFILE=long runs 5,000 per shape,
the `compat` profile of the other interpreters' passes a tenth.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler
from tests.conftest import examples, fc_context, http_event

SHAPES = 8  # the @FUZZ tests below; SHAPES x EVENTS_PER_SHAPE >= 10,000 in CI (the `ci` profile)
EVENTS_PER_SHAPE = examples(1300)  # 5,000 with HYPOTHESIS_PROFILE=long, 130 in the other interpreters' passes
FUZZ = settings(
    max_examples=EVENTS_PER_SHAPE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Keys the adapters look at, so random events come close to real shapes.
near_keys = st.sampled_from(
    [
        "version",
        "rawPath",
        "body",
        "isBase64Encoded",
        "headers",
        "requestContext",
        "http",
        "method",
        "events",
        "eventSource",
        "eventName",
        "oss",
        "bucket",
        "object",
        "key",
        "TopicOwner",
        "Message",
        "TopicName",
        "MessageId",
        "attrs",
        "type",
        "data",
        "messageBody",
        "specversion",
        "source",
        "triggerTime",
        "triggerName",
        "payload",
        "requestPayload",
        "responsePayload",
        "ProjectName",
        "Id",
        "Tags",
        "Actions",
        "Input",
    ]
)
near_events = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "v1",
            "POST",
            "GET",
            "acs:oss",
            "acs.oss",
            "ObjectCreated:PutObject",
            "oss:ObjectCreated:PutObject",
            "mns:Queue:SendMessage",
            "demo-project",
        ]
    ),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(near_keys | st.text(max_size=6), children, max_size=5),
    max_leaves=16,
)


@pytest.fixture(scope="module")
def shared_emu():
    """One emulator for the module: starting one per example would dominate 10,000 events."""
    from emulator import Emulator

    with Emulator(seed="demo") as emu:
        yield emu


@pytest.fixture
def env(shared_emu, monkeypatch, sts_module):
    monkeypatch.setenv("IMM_ENDPOINT", shared_emu.endpoint)
    monkeypatch.setenv("IMM_PROTOCOL", "http")
    monkeypatch.setenv("IMM_REGION", "cn-hangzhou")
    monkeypatch.setenv("OSS_ENDPOINT", shared_emu.url)
    monkeypatch.setenv("HTTP_AUTH", "none")  # let random bodies reach the parser
    return shared_emu


@pytest.fixture(scope="module")
def sts_module(shared_emu):
    from tests.conftest import StsKey

    key = StsKey()
    shared_emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
    return key


def call(event, key):
    """The handler must answer (a dict) and never raise for input that never reached IMM."""
    result = handler.handler(event, fc_context(key))
    assert isinstance(result, dict)
    json.dumps(result)
    return result


def imm_calls(emu):
    return len(emu.calls(service="imm"))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes(env, sts_module, raw):
    before = imm_calls(env)
    result = call(raw, sts_module)
    assert all(r["status"] == "invalid" for r in result["results"]) or "statusCode" in result
    assert imm_calls(env) == before


@FUZZ
@given(value=json_values)
def test_random_json(env, sts_module, value):
    before = imm_calls(env)
    call(json.dumps(value).encode(), sts_module)
    assert imm_calls(env) == before


@FUZZ
@given(value=near_events)
def test_near_miss_trigger_events(env, sts_module, value):
    before = imm_calls(env)
    call(json.dumps(value).encode(), sts_module)
    assert imm_calls(env) == before


@FUZZ
@given(
    body=st.binary(max_size=200),
    b64=st.booleans(),
    method=st.sampled_from(["POST", "GET", "PUT", "HEAD"]),
    path=st.sampled_from(["/", "/schema", "/healthz", "/x/y", ""]),
)
def test_http_requests_with_random_bodies(env, sts_module, body, b64, method, path):
    before = imm_calls(env)
    response = call(
        http_event(method, path or "/", body, {"content-type": "application/json"}, base64_body=b64), sts_module
    )
    assert set(response) == {"statusCode", "headers", "isBase64Encoded", "body"}
    assert response["statusCode"] in (200, 400, 405)
    assert imm_calls(env) == before
    if response["statusCode"] == 400:
        details = json.loads(response["body"])["results"][0]["error"]["details"]
        assert details and all("path" in d for d in details)


def test_base64_json_garbage_is_still_invalid(env, sts_module):
    raw = base64.b64encode(b'{"ProjectName": 1}')
    assert call(raw, sts_module)["results"][0]["status"] == "invalid"


bodies = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    json_values.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
)


@FUZZ
@given(
    message=bodies, attrs=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3), stream=st.booleans()
)
def test_mns_topic_events_with_random_messages(env, sts_module, message, attrs, stream):
    event = (
        {"body": message, "attrs": attrs}
        if stream
        else {**attrs, "TopicOwner": "1", "Message": message, "TopicName": "t", "MessageId": "m"}
    )
    before = imm_calls(env)
    call(json.dumps(event).encode(), sts_module)
    assert imm_calls(env) == before


@FUZZ
@given(items=st.lists(st.tuples(bodies, st.text(max_size=6), st.booleans()), min_size=1, max_size=4))
def test_mns_queue_batches_with_random_bodies(env, sts_module, items):
    event = [
        {"type": "mns:Queue:SendMessage", "id": i, "data": {"messageId": mid, "messageBody": body}}
        if ok
        else {"type": "mns:Queue:SendMessage", "data": body}
        for body, mid, ok in items
        for i in [mid]
    ]
    before = imm_calls(env)
    call(json.dumps(event).encode(), sts_module)
    assert imm_calls(env) == before


@FUZZ
@given(payload=st.one_of(st.none(), bodies, json_values), name=st.text(max_size=10))
def test_timer_events_with_random_payloads(env, sts_module, payload, name):
    before = imm_calls(env)
    call(
        json.dumps({"triggerTime": "2026-01-01T00:00:00Z", "triggerName": name, "payload": payload}).encode(),
        sts_module,
    )
    assert imm_calls(env) == before


@FUZZ
@given(
    key=st.text(min_size=1, max_size=40),
    name=st.sampled_from(["ObjectCreated:PutObject", "ObjectRemoved:DeleteObject", "ObjectCreated:PostObject", "x"]),
    size=st.one_of(st.none(), st.integers(-5, 10**9)),
    bucket=st.sampled_from(["demo-bucket", "nope-bucket", ""]),
)
def test_oss_events_with_random_keys(env, sts_module, key, name, size, bucket):
    event = {
        "events": [
            {
                "eventName": name,
                "eventSource": "acs:oss",
                "region": "cn-hangzhou",
                "oss": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": "E"}},
            }
        ]
    }
    before = imm_calls(env)
    result = call(json.dumps(event).encode(), sts_module)
    assert all(r["status"] in ("invalid", "rejected") for r in result["results"])
    assert imm_calls(env) == before


# ---- poison anywhere in the event (issue #10): every kind, at every depth -------------------------------------------
POISON_VALUES = [
    '"\\ud800"',  # a lone surrogate, escaped
    '"x\\udfff"',
    "1e400",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" + "0" * 400,
    '"a\\n"',  # control characters and a trailing newline: refused by the schema where a document holds them
    '"\\u0000"',
    '"demo-project\\n"',
]


def poisoned_text(value, data) -> bytes:
    """JSON text of `value` in which the fuzzer may replace any value with poison or repeat any key."""

    def text(node) -> str:
        if data.draw(st.integers(0, 9), label="poison?") == 0:
            return data.draw(st.sampled_from(POISON_VALUES), label="poison")
        if isinstance(node, dict):
            items = [f"{json.dumps(k)}: {text(v)}" for k, v in node.items()]
            if items and data.draw(st.integers(0, 5), label="duplicate?") == 0:
                key = next(iter(node))
                items.append(f"{json.dumps(key)}: {text(node[key])}")
            return "{" + ", ".join(items) + "}"
        if isinstance(node, list):
            return "[" + ", ".join(text(v) for v in node) + "]"
        return json.dumps(node)

    raw = text(value)
    if data.draw(st.integers(0, 19), label="raw surrogate?") == 0:  # a raw lone surrogate: not even UTF-8
        return raw.encode("utf-8") + "\ud800".encode("utf-8", "surrogatepass")
    return raw.encode("utf-8")


def _shapes(doc):
    """Real trigger shapes around a document (as a value, so the poison can land in the envelope too)."""
    body = json.dumps(doc)
    return [
        doc,
        [doc, doc],
        {"TopicOwner": "1", "Message": body, "TopicName": "t", "MessageId": "m"},
        {"body": body, "attrs": {"a": "b"}},
        [{"type": "mns:Queue:SendMessage", "id": "e", "data": {"messageId": "m", "messageBody": body}}],
        {"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": body},
        json.loads(http_event("POST", "/", body.encode(), {"content-type": "application/json"})),
    ]


DOCUMENTS = st.fixed_dictionaries(
    {
        "ProjectName": st.just("demo-project"),
        "Id": st.just("batch-demo-ready"),
        "Input": st.just({"OSS": {"Bucket": "demo-bucket", "Prefix": "in/", "MatchExpressions": ["*.pdf"]}}),
        "Actions": st.just([{"Name": "doc/convert", "Parameters": ["pages=3"]}]),
        "Tags": st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(max_size=5) | st.integers(), max_size=3),
    }
)


@FUZZ
@given(doc=DOCUMENTS, shape=st.integers(0, 6), data=st.data())
def test_poison_anywhere_in_any_trigger_event(env, sts_module, doc, shape, data):
    """Never an uncaught exception, never an IMM call once poison is in (or around) the document, every outcome
    final; a poisoned HTTP event is answered as HTTP."""
    event = poisoned_text(_shapes(doc)[shape], data)
    before = imm_calls(env)
    result = call(event, sts_module)  # raises DeliveryIncomplete if any outcome were not final
    results = json.loads(result["body"])["results"] if "statusCode" in result else result["results"]
    clean = b"\\ud" not in event and not any(p.encode() in event for p in POISON_VALUES[2:]) and b"\xed" not in event
    if not clean:
        assert all(r["status"] in ("invalid", "rejected", "updated", "dry_run") for r in results)
    poisoned = [r for r in results if r["status"] in ("invalid", "rejected")]
    if not clean and not poisoned:
        # Poison landed only where it does not matter (an envelope field no source reads, such as "attrs"): the
        # document itself was clean and applied.
        assert all(r["status"] == "updated" for r in results)
    if all(r["status"] in ("invalid", "rejected") for r in results):
        assert imm_calls(env) == before


@FUZZ
@given(value=near_events)
def test_a_source_matches_only_events_with_one_of_its_marker_keys(value):
    """`Sources.detect` sends a dict with none of any source's marker keys straight to the direct source: that is
    right only if no source ever matches such an event."""
    from imm_batch_updater.sources import Sources

    if not isinstance(value, dict):
        return
    for source in Sources().all:
        if source.markers and source.matches(value):
            assert not value.keys().isdisjoint(source.markers), source.name
