"""The `trickle` and `answer` faults (issue #10): answers that arrive too slowly, and answers that are not IMM's.

`trickle` must really hold the connection: a client whose timeout is per socket read keeps reading for as long as
the body lasts, while every other connection is served as usual. `answer` sends bytes a real service never would.
Both work for IMM, OSS and MNS alike, through the real SDKs.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time

import oss2
import pytest
from alibabacloud_imm20200930 import models as m
from darabonba.exceptions import UnretryableException
from mns.account import Account
from mns.mns_exception import MNSClientNetworkException
from mns.topic import TopicMessage

from emulator import Emulator
from emulator.__main__ import build_parser, configure
from emulator.faults import FaultInjector

P = "demo-project"
READY = "batch-demo-ready"


def raw_get(emu: Emulator, path: str = "/demo-bucket/doc.json", timeout: float = 1.0):
    """GET with a 1 s timeout per socket operation; returns (status, body, seconds to headers, seconds in all)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        head_at = time.monotonic() - started
        body = response.read()
        return response.status, body, head_at, time.monotonic() - started, dict(response.getheaders())
    finally:
        conn.close()


# -- trickle ----------------------------------------------------------------------------------------------------


def test_trickle_outlasts_a_per_read_timeout_by_far(emu):
    """30 bytes at 100 ms: ~2.9 s in all, yet no single read waits 1 s, so the 1 s timeout never fires."""
    body = b'{"RequestId":"slow-but-steady"}'[:30]
    emu.faults.inject("GetObject", "trickle", interval_ms=100, status=200, body=body)
    status, received, head_at, total, headers = raw_get(emu, timeout=1.0)
    assert (status, received) == (200, body)
    assert head_at < 0.5  # status line and headers at once
    assert 2.6 <= total < 6, total
    assert headers["Content-Length"] == str(len(body))
    assert emu.faults.count(kind="trickle", service="oss") == 1


def test_trickled_imm_answer_through_the_sdk_with_a_one_second_read_timeout(make_client, emu):
    """The SDK's read timeout applies per socket read: a trickled GetBatch keeps it reading past it."""
    emu.faults.inject("GetBatch", "trickle", interval_ms=100, chunk=40)
    client = make_client(read_timeout=1000, connect_timeout=1000)
    started = time.monotonic()
    response = client.get_batch(m.GetBatchRequest(project_name=P, id=READY))
    elapsed = time.monotonic() - started
    assert response.body.batch.id == READY and response.body.request_id  # the service's own answer, whole
    size = int(response.headers["content-length"])
    assert elapsed >= (size // 40 - 1) * 0.1 > 1.0, (elapsed, size)


def test_a_trickle_holds_only_its_own_connection(make_client, emu):
    emu.faults.inject("GetObject", "trickle", interval_ms=100, body=b"x" * 25)
    slow = threading.Thread(target=raw_get, args=(emu,), kwargs={"timeout": 5})
    slow.start()
    time.sleep(0.2)
    client = make_client()
    started = time.monotonic()
    for _ in range(10):
        assert client.get_batch(m.GetBatchRequest(project_name=P, id=READY)).status_code == 200
    assert time.monotonic() - started < 1.5
    assert slow.is_alive()  # still trickling while the ten calls were answered
    slow.join(10)
    starts = [c.started for c in emu.calls(action="GetBatch")]
    assert len(starts) == 10


def test_trickled_headers(emu):
    emu.faults.inject("GetObject", "trickle", interval_ms=10, headers=True, body=b"{}")
    status, body, head_at, _, _ = raw_get(emu, timeout=1.0)
    assert (status, body) == (200, b"{}")
    assert head_at > 0.5  # ~100 header bytes at 10 ms each before the headers were complete
    emu.faults.inject("GetObject", "trickle", interval_ms=10, body=b"{}")
    assert raw_get(emu)[2] < 0.3  # without headers=True the head comes at once


def test_the_default_trickle_delivers_the_real_answer_and_the_call_takes_effect(make_client, emu):
    emu.faults.inject("UpdateBatch", "trickle", interval_ms=1, chunk=4)
    response = make_client().update_batch(m.UpdateBatchRequest(project_name=P, id=READY, tags={"slow": "yes"}))
    assert response.body.request_id
    assert emu.imm.get_batch(P, READY)["Tags"] == {"slow": "yes"}


def test_a_given_trickled_answer_never_reaches_the_service(make_client, emu):
    emu.faults.inject("UpdateBatch", "trickle", interval_ms=1, status=200, body=b'{"RequestId":"fake"}')
    response = make_client().update_batch(m.UpdateBatchRequest(project_name=P, id=READY, tags={"x": "y"}))
    assert response.body.request_id == "fake"
    assert emu.imm.get_batch(P, READY)["Tags"] == {"env": "demo", "team": "media"}


def test_a_client_giving_up_mid_trickle_does_not_disturb_the_emulator(emu, make_client):
    emu.faults.inject("GetObject", "trickle", interval_ms=50, body=b"y" * 200)
    sock = socket.create_connection((emu.host, emu.port), timeout=2)
    sock.sendall(b"GET /demo-bucket/doc.json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    time.sleep(0.2)
    assert make_client().get_batch(m.GetBatchRequest(project_name=P, id=READY)).status_code == 200


def test_stopping_the_emulator_cuts_a_trickle_short():
    emu = Emulator(seed="demo").start()
    emu.faults.inject("GetObject", "trickle", interval_ms=200, body=b"z" * 500)  # 100 s if left alone
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            outcome["result"] = raw_get(emu, timeout=5)
        except (http.client.HTTPException, OSError) as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    started = time.monotonic()
    reader.start()
    time.sleep(0.5)
    emu.stop()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - started < 3
    assert "error" in outcome  # an incomplete read, never a whole answer


def test_trickle_for_oss_and_mns_through_their_sdks():
    with Emulator(seed="demo") as emu:
        emu.oss.put_object("demo-bucket", "docs/a.json", b'{"k":"' + b"v" * 40 + b'"}')
        emu.faults.inject("GetObject", "trickle", interval_ms=50, chunk=2, service="oss")
        started = time.monotonic()
        data = oss2.Bucket(oss2.Auth("local-ak", "local-secret"), emu.url, "demo-bucket").get_object("docs/a.json")
        assert data.read() == b'{"k":"' + b"v" * 40 + b'"}'
        assert time.monotonic() - started > 0.9  # 48 bytes, 2 at a time, 50 ms apart

        emu.faults.inject("PublishMessage", "trickle", interval_ms=5, service="mns")
        started = time.monotonic()
        topic = Account(emu.url, "local-ak", "local-secret", "").get_topic("imm-batch-updater-results")
        sent = topic.publish_message(TopicMessage("hello"))
        assert sent.message_id and time.monotonic() - started > 0.5  # a ~200-byte XML answer at 5 ms a byte
        assert [msg["body"] for msg in emu.mns.published("imm-batch-updater-results")] == ["hello"]


# -- answer -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{}", b"null", b"[]", b'"x"', b"not json", b""])
def test_answer_sends_exactly_what_it_is_given_and_skips_the_service(emu, body):
    emu.faults.inject("UpdateBatch", "answer", status=200, body=body)
    from imm_wire_helpers import imm_call

    response = imm_call(emu.endpoint, "UpdateBatch", {"ProjectName": P, "Id": READY, "Tags": '{"a":"b"}'})
    assert (response.status, response.raw) == (200, body)
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert "x-acs-request-id" not in response.headers
    assert emu.imm.get_batch(P, READY)["Tags"] == {"env": "demo", "team": "media"}
    assert emu.calls(action="UpdateBatch")[-1].status == 200


def test_answers_that_are_not_imms_as_the_sdk_sees_them(client, emu):
    emu.faults.inject("UpdateBatch", "answer", body=b"{}")
    assert client.update_batch(m.UpdateBatchRequest(project_name=P, id=READY, tags={"a": "b"})).body.request_id is None
    emu.faults.inject("UpdateBatch", "answer", body=b"not json", content_type="text/plain")
    with pytest.raises(UnretryableException):
        client.update_batch(m.UpdateBatchRequest(project_name=P, id=READY, tags={"a": "b"}))
    assert emu.imm.get_batch(P, READY)["Tags"] == {"env": "demo", "team": "media"}


@pytest.mark.parametrize("state", [None, "", "Exploded"])
def test_getbatch_answer_with_a_state_that_is_not_one_of_the_five(client, emu, state):
    batch = {"Id": READY, "Tags": {"env": "demo"}}
    if state is not None:
        batch["State"] = state
    emu.faults.inject("GetBatch", "answer", body={"RequestId": "r-1", "Batch": batch})  # a dict goes out as JSON
    got = client.get_batch(m.GetBatchRequest(project_name=P, id=READY)).body
    assert (got.request_id, got.batch.id, got.batch.state) == ("r-1", READY, state)


def test_answer_status_headers_and_non_json_content_type(emu):
    emu.faults.inject(
        "GetObject", "answer", status=503, body="busy", content_type="text/plain", extra_headers={"X-A": "1"}
    )
    status, body, _, _, headers = raw_get(emu)
    assert (status, body, headers["Content-Type"], headers["X-A"]) == (503, b"busy", "text/plain", "1")


def test_answer_for_mns_breaks_the_sdks_expectations(emu):
    emu.faults.inject("PublishMessage", "answer", status=201, body=b"<Message/>", content_type="text/xml")
    topic = Account(emu.url, "local-ak", "local-secret", "").get_topic("imm-batch-updater-results")
    with pytest.raises(MNSClientNetworkException):
        topic.publish_message(TopicMessage("x"))
    assert emu.mns.published("imm-batch-updater-results") == []


# -- options, specs and the CLI ---------------------------------------------------------------------------------


def test_spec_form_with_base64_body_and_booleans(client, emu):
    body = base64.b64encode(json.dumps({"RequestId": "from-cli", "Batch": {"Id": "b", "State": ""}}).encode()).decode()
    emu.faults.add_spec(f"GetBatch:answer:1:status=200,body_b64={body}")
    assert client.get_batch(m.GetBatchRequest(project_name=P, id=READY)).body.request_id == "from-cli"
    emu.faults.add_spec("GetObject:trickle:1:interval_ms=5,headers=false,body=ok")
    status, received, head_at, _, _ = raw_get(emu)
    assert (status, received) == (200, b"ok") and head_at < 0.3


def test_cli_faults_reach_the_emulator():
    args = build_parser().parse_args(
        ["--port", "0", "--seed", "demo", "--fault", "GetObject:answer:2:status=418,body=teapot"]
    )
    emu = configure(args).start()
    try:
        assert raw_get(emu)[:2] == (418, b"teapot")
        assert raw_get(emu)[:2] == (418, b"teapot")
        assert raw_get(emu)[0] == 403  # count=2: the third call reaches OSS, which refuses an unsigned GET
    finally:
        emu.stop()


@pytest.mark.parametrize(
    ("kind", "opts"),
    [
        ("trickle", {"chunk": 0}),
        ("trickle", {"interval_ms": -1}),
        ("answer", {"body": b"a", "body_b64": "YQ=="}),
        ("answer", {"body_b64": "not base64!"}),
        ("answer", {"status": "two hundred"}),
        ("answer", {"extra_headers": True}),
    ],
)
def test_bad_options_are_refused_when_injected(kind, opts):
    with pytest.raises(ValueError):
        FaultInjector().inject("GetBatch", kind, **opts)


def test_random_faults_may_draw_answers(client, emu):
    emu.faults.random(1.0, [("answer", {"body": b'{"RequestId":"random"}'})], seed=3, actions=["GetBatch"])
    assert client.get_batch(m.GetBatchRequest(project_name=P, id=READY)).body.request_id == "random"
    emu.faults.clear()
    assert client.get_batch(m.GetBatchRequest(project_name=P, id=READY)).body.batch.state == "Ready"


# -- the request log ----------------------------------------------------------------------------------------------


def test_request_log_is_bounded_and_keeps_the_newest(make_client):
    with Emulator(seed="demo", request_log_size=5) as small:
        for i in range(8):
            small.oss.put_object("demo-bucket", f"k{i}", b"x")
            raw_get(small, f"/demo-bucket/k{i}")
        assert [c.path for c in small.calls()] == [f"/demo-bucket/k{i}" for i in range(3, 8)]
    assert Emulator(seed=None).requests.maxlen >= 100_000  # far above a test's count (the bench makes ~2,000)
    with pytest.raises(ValueError):
        Emulator(seed=None, request_log_size=0)
