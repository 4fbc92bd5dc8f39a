"""Round 7 attack findings: how trigger events are recognised, decoded and answered.

- An HTTP request sent with `X-Fc-Invocation-Type: Async` is an asynchronous invocation: FC answers the client 202
  at once and the function's return value only reaches the async destination. A `failed`/`throttled` result
  answered as a 502/429 response struct was then lost: nobody sees the status, and FC does not retry an invocation
  that returned. Such a request now raises `DeliveryIncomplete` after reporting, like every event trigger, so FC's
  async retry delivers it again; final results (including 4xx client errors) are still answered, never raised.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import PROJECT, READY, RUNNING, examples, fc_context, http_event, signed_headers

FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"env": "prod"}}


def _event(invoke, document, extra_headers):
    raw = json.dumps(document).encode()
    return http_event("POST", "/", raw, {**signed_headers(invoke.secret, raw), **extra_headers})


def _post(invoke, document, extra_headers):
    return handler.handler(_event(invoke, document, extra_headers), fc_context(invoke.sts))


_ASYNC_NAMES = st.sampled_from(["X-Fc-Invocation-Type", "x-fc-invocation-type", "X-FC-INVOCATION-TYPE"])
_ASYNC_VALUES = st.sampled_from(["Async", "async", "ASYNC", " Async "])


@settings(max_examples=examples(8), deadline=None, suppress_health_check=FIXTURES_OK)
@given(name=_ASYNC_NAMES, value=_ASYNC_VALUES)
def test_an_async_http_request_whose_update_is_not_final_is_retried_by_fc(invoke, emu, name, value):
    emu.faults.clear()
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    tags = {"env": f"{name}={value}"}
    event = _event(invoke, {**UPDATE, "Tags": tags}, {name: value})
    with pytest.raises(DeliveryIncomplete, match="not final"):
        handler.handler(event, fc_context(invoke.sts))
    emu.faults.clear()
    # FC's retry delivers the same event (same webhook-id and body): applied, not answered from the replay memory.
    assert handler.handler(event, fc_context(invoke.sts))["statusCode"] == 200
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == tags


def test_an_async_http_request_with_only_final_results_is_answered_not_raised(invoke, emu):
    headers = {"X-Fc-Invocation-Type": "Async"}
    assert _post(invoke, {**UPDATE, "Id": RUNNING}, headers)["statusCode"] == 409
    assert _post(invoke, {"ProjectName": PROJECT}, headers)["statusCode"] == 400
    raw = json.dumps(UPDATE).encode()
    unsigned = handler.handler(http_event("POST", "/", raw, headers), fc_context(invoke.sts))
    assert unsigned["statusCode"] == 401


def test_a_sync_http_request_that_failed_is_still_a_502_answer(invoke, emu):
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    for headers in ({}, {"X-Fc-Invocation-Type": "Sync"}):
        assert _post(invoke, UPDATE, headers)["statusCode"] == 502


# ---- an OSS record's region names the host the role's signed read goes to ----------------------------------------
def _region_ids() -> st.SearchStrategy[str]:
    return st.sampled_from(["cn-hangzhou", "ap-southeast-1", "cn-shanghai-finance-1", "us-west-1", "eu-central-1"])


def test_an_oss_record_region_that_is_not_a_region_id_never_sends_the_role_token_elsewhere(invoke, emu, fn_env):
    """Without OSS_ENDPOINT the read goes to `oss-{region}.aliyuncs.com`, the region taken from the record. A record
    (a direct invocation, an MNS topic STREAM message shaped like an OSS event) whose region is
    `cn-hangzhou@127.0.0.1:<port>#` made that URL point at another host, and the GET, signed with the role's keys
    and carrying its security token, went there; the outcome was `failed` and the event retried."""
    import socket

    from tests.triggers.events import oss_event, oss_record, run

    fn_env.delenv("OSS_ENDPOINT")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        for region in (f"cn-hangzhou@127.0.0.1:{port}#", f"x@127.0.0.1:{port}/", "cn-hangzhou.evil.example#"):
            record = {**oss_record("demo-bucket", "requests/a.json"), "region": region}
            result = run(invoke, oss_event(record))
            [outcome] = result["results"]
            assert outcome["status"] == "invalid", outcome
            assert outcome["error"]["details"][0]["path"] == "/events/0/region"
            assert region not in json.dumps(result)  # not echoed
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected
    finally:
        listener.close()


@settings(max_examples=examples(60), deadline=None, suppress_health_check=FIXTURES_OK)
@given(region=st.text(max_size=40) | st.from_regex(r"[a-z0-9.@:#/-]{1,30}", fullmatch=True) | _region_ids())
def test_an_oss_record_region_is_a_region_id_or_the_record_is_invalid_at_its_pointer(invoke, emu, region):
    from imm_batch_updater.context import REGION_ID
    from tests.triggers.events import DOC, oss_event, oss_record, run

    emu.oss.put_object("demo-bucket", "requests/r.json", json.dumps(DOC).encode())
    record = {**oss_record("demo-bucket", "requests/r.json"), "region": region}
    before = len(emu.calls(service="oss"))
    try:
        result = run(invoke, oss_event(record))
    except DeliveryIncomplete:
        pytest.fail(f"region {region!r}: retried")
    [outcome] = result["results"]
    if region == "":
        assert outcome["status"] == "updated"  # no region: the function's own
    elif REGION_ID.fullmatch(region):
        assert outcome["status"] in ("updated", "rejected")  # rejected: the emulator signs for cn-hangzhou only
    else:
        assert outcome["status"] == "invalid" and outcome["error"]["details"][0]["path"] == "/events/0/region"
        assert len(emu.calls(service="oss")) == before


# ---- an outcome notification of this function delivered back to it ---------------------------------------------
def test_an_outcome_notification_that_comes_back_by_any_trigger_is_invalid_and_not_sent_on(fn_env, invoke, emu, capsys):
    """The result topic feeding the function again by a path it cannot see (a STREAM topic subscription, a queue
    subscribed to the result topic, a result function whose own sink points back): the notification was a new
    (invalid) document whose outcome was notified again, forever. A document that is one of this function's
    outcome notifications is `invalid` (`OutcomeNotification`, at /type) and its outcome is logged, not sent to
    the sinks; the other documents of the delivery are reported as usual."""
    from tests.sinks.conftest import log_records, messages
    from tests.triggers.events import b64, cloud_event

    emu.mns.create_topic("imm-results")
    fn_env.setenv("RESULT_MNS_TOPIC", "imm-results")
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    invoke.direct(UPDATE)
    [note] = emu.mns.published("imm-results")
    many = json.dumps({"type": "imm_batch_updater.outcomes", "timestamp": "t", "data": {"results": []}})
    capsys.readouterr()
    # A STREAM topic message without attributes: the raw body is the event.
    [result] = invoke.direct(None, raw=note["body"].encode())["results"]
    assert result["status"] == "invalid" and result["error"]["code"] == "OutcomeNotification"
    assert result["error"]["details"][0]["path"] == "/type"
    # A queue subscribed to the result topic, base64 as the SDK sends it, next to a genuine document.
    batch = [
        cloud_event(b64(json.loads(note["body"])), "E1"),
        cloud_event(json.dumps(UPDATE), "D1"),
        cloud_event(many, "E2"),
    ]
    results = invoke.direct(None, raw=json.dumps(batch).encode())["results"]
    assert [r["status"] for r in results] == ["invalid", "updated", "invalid"]
    published = emu.mns.published("imm-results")
    assert len(published) == 2 and json.loads(published[1]["body"])["data"]["result"]["message_id"] == "D1"
    records = log_records(capsys)
    assert len(messages(records, "outcome")) == 4  # every outcome is still logged


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=8,
)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=FIXTURES_OK)
@given(kind=_JSON | st.sampled_from(["imm_batch_updater.outcome", "imm_batch_updater.outcomes"]), data=_JSON)
def test_a_document_with_a_type_field_is_invalid_whatever_it_holds(invoke, emu, kind, data):
    [result] = invoke.direct({"type": kind, "timestamp": "t", "data": data})["results"]
    assert result["status"] == "invalid"
    notification = kind in ("imm_batch_updater.outcome", "imm_batch_updater.outcomes") and isinstance(data, dict)
    assert (result["error"]["code"] == "OutcomeNotification") is notification


# ---- a POST refused for its body (HTTP_AUTH=none) is reported like any other invalid update ----------------------
def test_a_post_whose_body_cannot_be_read_is_reported_as_an_outcome(invoke, fn_env, capsys):
    """Without webhook auth, a POST whose body is not valid JSON was answered 400 *and* reported (an outcome line,
    the sinks), but one whose body is not a string, is marked base64 and is not, or whose event holds a value that
    can never be sent, was only answered: no outcome line, nothing for the sinks to carry as a dead letter."""
    from tests.sinks.conftest import log_records, messages

    fn_env.setenv("HTTP_AUTH", "none")
    clean = json.loads(http_event("POST", "/", json.dumps(UPDATE).encode(), {}))
    cases = [
        (json.dumps({**clean, "body": 42}), "/body"),
        (json.dumps({**clean, "body": "%%%", "isBase64Encoded": True}), "/body"),
        (json.dumps(clean).replace('"headers": {}', '"headers": {"x-a": "1", "x-a": "2"}', 1), ""),
    ]
    for event, path in cases:
        capsys.readouterr()
        response = handler.handler(event.encode(), fc_context(invoke.sts))
        assert response["statusCode"] == 400
        [result] = json.loads(response["body"])["results"]
        assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == path
        [line] = messages(log_records(capsys), "outcome")
        assert line["source"] == "http" and line["status"] == "invalid"


# ---- MNS topic JSON events carry the publisher's attributes at their top level ------------------------------------
_ATTRIBUTE_NAMES = st.sampled_from(
    ["type", "events", "requestContext", "requestPayload", "rawPath", "triggerTime", "triggerName", "payload", "data"]
)
_ATTRIBUTE_VALUES = st.sampled_from(
    [
        "mns:Queue:SendMessage",
        [{"eventSource": "acs:oss", "eventName": "ObjectCreated:PutObject"}],
        {"http": {"method": "POST"}},
        {"requestId": "r"},
        "x",
        "2026-01-01T00:00:00Z",
    ]
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=FIXTURES_OK)
@given(attributes=st.dictionaries(_ATTRIBUTE_NAMES, _ATTRIBUTE_VALUES, min_size=1, max_size=4))
def test_a_topic_json_event_is_recognised_whatever_attributes_the_publisher_merged_in(invoke, emu, attributes):
    """The JSON notify format merges the message's attributes into the event's top level, where they may carry any
    name, `type` or `events` or `requestContext` included: `{"type": "mns:Queue:SendMessage"}` made the event a
    queue CloudEvent ("no data object"), an `events` list an OSS event, a `requestContext` an HTTP request or an
    async-destination record. `TopicOwner` + `Message` is a shape no other trigger has (a CloudEvent's attribute
    names are lower-case), so it is recognised first."""
    from tests.triggers.events import topic_event

    event = topic_event(json.dumps(UPDATE), message_id="TOPIC-1", **attributes)
    [result] = invoke.direct(None, raw=json.dumps(event).encode())["results"]
    assert result["status"] == "updated" and result["message_id"] == "TOPIC-1"


def test_a_post_event_that_is_not_utf8_is_reported_as_an_outcome_too(invoke, fn_env, capsys):
    """HTTP_AUTH=none: a POST event whose bytes are not UTF-8 is as unreadable as one whose body is not a string,
    and must be reported like it (an outcome line, the sinks), not only answered 400. A GET stays a 400 answer."""
    from tests.sinks.conftest import log_records, messages

    fn_env.setenv("HTTP_AUTH", "none")
    for method, reported in (("POST", True), ("GET", False)):
        event = http_event(method, "/", json.dumps(UPDATE).encode(), {}).replace(b"prod", b"pr\xffod", 1)
        capsys.readouterr()
        response = handler.handler(event, fc_context(invoke.sts))
        assert response["statusCode"] == 400
        [result] = json.loads(response["body"])["results"]
        assert result["status"] == "invalid"
        lines = messages(log_records(capsys), "outcome")
        assert len(lines) == int(reported), method
        if reported:
            assert lines[0]["source"] == "http" and lines[0]["status"] == "invalid"


@pytest.mark.parametrize("region", [42, ["cn-hangzhou"], {"id": "cn-hangzhou"}, True])
def test_an_oss_record_region_that_is_not_a_string_is_invalid_too(invoke, emu, region):
    """README: a record `region` that is not a region id is `invalid` at /events/N/region. One that is not a string
    at all was read as missing, and the object read from the function's own region instead."""
    from tests.triggers.events import DOC, oss_event, oss_record, run

    emu.oss.put_object("demo-bucket", "requests/r.json", json.dumps(DOC).encode())
    before = len(emu.calls(service="oss"))
    result = run(invoke, oss_event({**oss_record("demo-bucket", "requests/r.json"), "region": region}))
    [outcome] = result["results"]
    assert outcome["status"] == "invalid" and outcome["error"]["details"][0]["path"] == "/events/0/region"
    assert len(emu.calls(service="oss")) == before


def test_an_async_retry_after_the_signature_window_is_refused_not_raised(invoke, emu):
    """README Known limits: FC's async retry re-sends the signed request as it was; one that runs more than 5 minutes
    after its webhook-timestamp (a late retry, or a run FC's async queue delayed) is a stale signature: 401, not
    applied and not raised (a retry cannot make it fresh)."""
    import time

    raw = json.dumps(UPDATE).encode()
    stale = signed_headers(invoke.secret, raw, timestamp=int(time.time()) - 6 * 60)
    headers = {**stale, "X-Fc-Invocation-Type": "Async"}
    answer = handler.handler(http_event("POST", "/", raw, headers), fc_context(invoke.sts))
    assert answer["statusCode"] == 401
    assert emu.calls(action="UpdateBatch") == []
