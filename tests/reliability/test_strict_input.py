"""Strict input on every trigger (issue #10): what can never be sent is refused up front, never retried.

A generator places each kind of poison in each field of a document, written as raw JSON text (Python's own
encoder cannot even write most of them), and delivers it through each trigger:

- kinds: a lone surrogate written as an escape, numbers that are not finite once decoded (`1e400`, `-1e999`,
  `NaN`, `Infinity`, `-Infinity`, a 400-digit integer), a duplicate key, control characters and a trailing newline;
- fields: every string and number a document can hold (and every object, for duplicate keys);
- triggers: direct invocation, HTTP (signed), MNS topic (JSON and STREAM), MNS queue (plain and base64, alone and
  in a batch push with a good message), timer, OSS upload.

For each: the handler never raises for it, IMM is never called for it, the outcome is final (`invalid`) and names
the field's JSON Pointer; the good message next to it in a batch push is still applied.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler
from imm_batch_updater.webhooks import sign
from tests.conftest import PROJECT, READY, StsKey, examples, fc_context, http_event, new_secret

SETTINGS = settings(
    max_examples=examples(400),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BUCKET = "trigger-bucket"

# (pointer of the field, how to reach it in the document) for every value a document can carry.
FIELDS = [
    "/ProjectName",
    "/Id",
    "/Input/OSS/Bucket",
    "/Input/OSS/Prefix",
    "/Input/OSS/MatchExpressions/0",
    "/Actions/0/Name",
    "/Actions/0/Parameters/0",
    "/Tags/k",
    "/Resume",
    "/DryRun",
]
SELECTOR_FIELDS = ["/Selector/TagSelector", "/Selector/State", "/MaxBatches"]
OBJECTS = ["", "/Input", "/Input/OSS", "/Actions/0", "/Tags", "/Selector"]
NON_FINITE = ["1e400", "-1e999", "NaN", "Infinity", "-Infinity", "1" + "0" * 400]
CONTROL = ["a\\nb", "abc\\n", "a\\u0000", "\\u007f", "x\\u0085", "\\t", "\\r\\n"]
# Strings the schema refuses in every field when they hold a control character (pattern-checked everywhere).


def document(selector: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ProjectName": PROJECT,
        "Id": READY,
        "Input": {"OSS": {"Bucket": "demo-bucket", "Prefix": "in/", "MatchExpressions": ["*.docx"]}},
        "Actions": [{"Name": "doc/convert", "Parameters": ["pages=3"]}],
        "Tags": {"k": "v"},
        "Resume": False,
        "DryRun": False,
    }
    if selector:
        del doc["Id"]
        doc["Selector"] = {"State": "Ready", "TagSelector": "tier=gold"}
        doc["MaxBatches"] = 5
    return doc


MARK = "__POISON__"


def with_raw(doc: dict[str, Any], pointer: str, raw: str) -> str:
    """The document as JSON text with the value at `pointer` replaced by the raw JSON text `raw`."""
    parts = pointer.strip("/").split("/")
    target: Any = doc
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = MARK
    else:
        target[last] = MARK
    return json.dumps(doc).replace(json.dumps(MARK), raw)


def with_duplicate(doc: dict[str, Any], obj: str) -> tuple[str, str]:
    """(text, pointer): the object at `obj` given its first key twice, with a different value the second time."""
    target: Any = doc
    for part in obj.strip("/").split("/") if obj else []:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key = next(iter(target))
    target[MARK] = "x"
    text = json.dumps(doc).replace(f"{json.dumps(MARK)}: {json.dumps('x')}", f"{json.dumps(key)}: {json.dumps('dup')}")
    return text, obj + "/" + key


@st.composite
def poisoned(draw: Any) -> tuple[str, str, str]:
    """(document text, pointer the outcome must name, kind)."""
    kind = draw(st.sampled_from(["surrogate", "non_finite", "duplicate", "control", "surrogate_key"]))
    selector = draw(st.booleans())
    doc = document(selector)
    fields = FIELDS + (SELECTOR_FIELDS if selector else [])
    if selector:
        fields.remove("/Id")
    if kind == "duplicate":
        objects = [o for o in OBJECTS if (o == "/Selector") == selector or o != "/Selector"]
        text, pointer = with_duplicate(doc, draw(st.sampled_from(objects)))
        return text, pointer, kind
    if kind == "surrogate_key":  # a key that is not valid Unicode: the object holding it is refused
        text = json.dumps(doc).replace('"k": "v"', '"\\udc00": "v"')
        return text, "/Tags", kind
    pointer = draw(st.sampled_from(fields))
    if kind == "non_finite":
        raw = draw(st.sampled_from(NON_FINITE))
    elif kind == "surrogate":
        raw = json.dumps(draw(st.sampled_from(["\\ud800", "a\\udfff", "\\udbff\\u0041"]))).replace("\\\\", "\\")
    else:
        if pointer in ("/Resume", "/DryRun", "/MaxBatches"):
            pointer = "/Tags/k"
        raw = '"' + draw(st.sampled_from(CONTROL)) + '"'
    return with_raw(doc, pointer, raw), pointer, kind


# -- delivering document text through each trigger ---------------------------------------------------------------
def events(text: str, secret: str, emu: Any) -> dict[str, Any]:
    """One event per trigger, each carrying the document text exactly as written."""
    b64 = base64.b64encode(text.encode()).decode()
    good = json.dumps({"ProjectName": PROJECT, "Id": READY, "Tags": {"good": uuid.uuid4().hex}})  # always a change

    def queue(body: str, mid: str) -> dict[str, Any]:
        return {"id": mid, "type": "mns:Queue:SendMessage", "data": {"messageId": mid, "messageBody": body}}

    emu.oss.put_object(BUCKET, "poison.json", text.encode())
    oss = {
        "events": [
            {
                "eventName": "ObjectCreated:PutObject",
                "eventSource": "acs:oss",
                "region": "cn-hangzhou",
                "oss": {"bucket": {"name": BUCKET}, "object": {"key": "poison.json", "eTag": "E1"}},
            }
        ]
    }
    body = text.encode()
    return {
        "direct": body,
        "http": http_event("POST", "/", body, sign(secret, f"msg_{uuid.uuid4().hex}", body)),
        "mns_topic": json.dumps({"TopicOwner": "1", "Message": text, "TopicName": "t", "MessageId": "T1"}).encode(),
        "mns_topic_stream": json.dumps({"body": b64, "attrs": {"a": "b"}}).encode(),
        "mns_queue": json.dumps(queue(text, "Q1")).encode(),
        "mns_queue_batch": json.dumps([queue(b64, "Q2"), queue(good, "Q3")]).encode(),
        "timer": json.dumps({"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": text}).encode(),
        "oss": json.dumps(oss).encode(),
    }


@pytest.fixture(scope="module")
def shared():
    from emulator import Emulator

    with Emulator(seed="demo") as emu:
        emu.oss.create_bucket(BUCKET)
        key = StsKey()
        emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
        yield emu, key


@pytest.fixture
def world(shared, monkeypatch):
    emu, key = shared
    secret = new_secret()
    for name, value in {
        "IMM_ENDPOINT": emu.endpoint,
        "IMM_PROTOCOL": "http",
        "IMM_REGION": "cn-hangzhou",
        "OSS_ENDPOINT": emu.url,
        "WEBHOOK_SECRET": secret,
        "IMM_BACKOFF_BASE_MS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    emu.imm.set_state(PROJECT, READY, "Ready")
    return emu, key, secret


def results_of(answer: Any) -> list[dict[str, Any]]:
    if "statusCode" in answer:
        return json.loads(answer["body"])["results"]
    return answer["results"]


TRIGGERS = ["direct", "http", "mns_topic", "mns_topic_stream", "mns_queue", "mns_queue_batch", "timer", "oss"]


@SETTINGS
@given(case=poisoned(), trigger=st.sampled_from(TRIGGERS))
def test_poison_is_refused_on_every_trigger(world, case, trigger):
    emu, key, secret = world
    text, pointer, kind = case
    event = events(text, secret, emu)[trigger]
    before = emu.calls(service="imm")
    answer = handler.handler(event, fc_context(key))  # never raises: every outcome below is final
    results = results_of(answer)
    calls = emu.calls(service="imm")[len(before) :]
    poisoned_results = [r for r in results if r.get("message_id") != "Q3"]
    assert [r["status"] for r in poisoned_results] == ["invalid"], (trigger, kind, results)
    paths = [d["path"] for d in poisoned_results[0]["error"]["details"]]
    assert pointer in paths, (trigger, kind, pointer, paths)
    if trigger == "http":
        assert answer["statusCode"] == 400
    if trigger == "mns_queue_batch":  # the good message next to it is applied
        [good] = [r for r in results if r.get("message_id") == "Q3"]
        assert good["status"] == "updated"
        assert [c.action for c in calls] == ["GetBatch", "UpdateBatch"]
    else:
        assert calls == [], (trigger, kind, calls)
    json.dumps(answer, allow_nan=False).encode("utf-8")  # the answer itself is strict JSON


# -- the cases from the issue, one by one --------------------------------------------------------------------------
def test_a_lone_surrogate_escape_in_tags_is_invalid_not_a_poison_loop(invoke, emu):
    raw = b'{"ProjectName":"demo-project","Id":"batch-demo-ready","Tags":{"note":"\\ud800"}}'
    status, body, _ = invoke.post(body=raw)
    [result] = body["results"]
    assert status == 400 and result["status"] == "invalid" and result["error"]["code"] == "InvalidUnicode"
    assert result["error"]["details"][0]["path"] == "/Tags/note"
    assert emu.calls(service="imm") == []
    [direct] = invoke.direct(None, raw=raw)["results"]  # an event trigger: final, so nothing is raised
    assert direct["status"] == "invalid"


def test_a_queue_message_body_that_is_not_unicode_is_invalid_and_the_handler_answers(invoke, emu):
    event = b'{"type":"mns:Queue:SendMessage","id":"e","data":{"messageId":"m","messageBody":"\\ud800"}}'
    [result] = invoke.direct(None, raw=event)["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == ""
    assert result["message_id"] == "m" and emu.calls(service="imm") == []


def test_an_http_body_that_is_not_unicode_is_answered_401_before_authentication(invoke, emu):
    envelope = json.loads(http_event("POST", "/", b"{}", {}))
    raw = json.dumps(envelope).replace('"body": "{}"', '"body": "\\ud800"').encode()
    response = handler.handler(raw, fc_context(invoke.sts))
    assert response["statusCode"] == 401 and emu.calls(service="imm") == []


def test_an_http_body_that_is_not_unicode_is_400_without_webhook_auth(invoke, emu, fn_env):
    fn_env.setenv("HTTP_AUTH", "none")
    envelope = json.loads(http_event("POST", "/", b"{}", {}))
    raw = json.dumps(envelope).replace('"body": "{}"', '"body": "\\ud800"').encode()
    response = handler.handler(raw, fc_context(invoke.sts))
    body = json.loads(response["body"])
    assert response["statusCode"] == 400 and body["results"][0]["error"]["details"][0]["path"] == ""


@pytest.mark.parametrize("number", ["1e400", "-1e999", "NaN", "Infinity", "1" + "0" * 400])
def test_numbers_that_are_not_finite_are_invalid_and_never_stored(invoke, emu, number):
    raw = f'{{"ProjectName":"demo-project","Id":"batch-demo-ready","Tags":{{"n":{number}}}}}'.encode()
    status, body, _ = invoke.post(body=raw)
    assert status == 400 and body["results"][0]["error"]["details"][0]["path"] == "/Tags/n"
    assert "Infinity" not in json.dumps(emu.imm.get_batch(PROJECT, READY)) and emu.calls(service="imm") == []


def test_a_dry_run_answer_is_strict_json(invoke, emu):
    status, body, headers = invoke.post({"ProjectName": PROJECT, "Id": READY, "Tags": {"n": 1.5}, "DryRun": True})
    assert status == 200 and body["results"][0]["status"] == "dry_run"


def test_a_trailing_newline_never_passes_a_pattern(invoke, emu):
    doc = {"ProjectName": PROJECT, "Id": READY, "Input": {"OSS": {"Bucket": "demo-bucket\n"}}}
    status, body, _ = invoke.post(doc)
    assert status == 400 and body["results"][0]["error"]["details"][0]["path"] == "/Input/OSS/Bucket"
    assert emu.calls(service="imm") == []


def test_which_batch_a_document_targets_is_never_a_guess(invoke, emu):
    raw = b'{"ProjectName":"p","Id":"batch-a","Tags":{"a":"b"},"Id":"batch-b"}'
    status, body, _ = invoke.post(body=raw)
    [result] = body["results"]
    assert status == 400 and result["error"]["code"] == "DuplicateKey" and result["batch_id"] is None
    assert result["error"]["details"][0]["path"] == "/Id"


def test_a_str_event_with_a_raw_lone_surrogate_is_invalid(invoke, emu):
    event = '{"ProjectName":"demo-project","Id":"batch-demo-ready","Tags":{"k":"\ud800"}}'
    [result] = handler.handler(event, fc_context(invoke.sts))["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == "/Tags/k"


def test_a_dict_event_with_nan_is_invalid(invoke, emu):
    [result] = handler.handler(
        {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": float("nan")}}, fc_context(invoke.sts)
    )["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == "/Tags/k"
