"""Nothing is reported done that IMM did not do, nothing that can never succeed is retried, and every invocation
ends in time however slowly a peer answers (issue #10, bullets 3-5).

- Only IMM's answer counts: a 2xx that is not a JSON object carrying `RequestId` (or a GetBatch whose State is
  missing, empty or unknown) is `failed` with `InvalidResponse`, never `updated`.
- A failure on this side of the wire (a request that cannot be built or encoded, a bug) is final: `rejected`, no
  retry, no exception for the platform to retry.
- A deadline per call, not per read: IMM, OSS, MNS and webhook peers that send their answer one byte every 150 ms
  do not keep a 3-second invocation past its timeout.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import handler
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import PROJECT, READY, fc_context

DOC = {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}}
NOT_IMMS = [b"{}", b"null", b"[]", b'"x"', b"not json", b'{"RequestId": ""}', b'{"Code": "Ok"}', b'{"RequestId": 7}']


# -- only IMM's answer counts -------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", NOT_IMMS)
def test_a_2xx_that_is_not_imms_answer_is_failed_never_updated(invoke, emu, fn_env, body):
    fn_env.setenv("IMM_PRECHECK", "false")
    before = emu.imm.get_batch(PROJECT, READY)["Tags"]
    emu.faults.inject("UpdateBatch", "answer", count=None, status=200, body=body)
    status, answer, _ = invoke.post(DOC)
    [result] = answer["results"]
    assert status == 502 and result["status"] == "failed" and result["error"]["code"] == "InvalidResponse"
    assert result["attempts"] == 4  # retried: a proxy's hiccup may pass
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == before  # and indeed nothing changed


@pytest.mark.parametrize("state", [None, "", "Exploded", 3])
def test_a_get_batch_without_one_of_the_five_states_is_failed(invoke, emu, state):
    batch = {"Id": READY, "Tags": {}}
    if state is not None:
        batch["State"] = state
    body = json.dumps({"RequestId": "R-1", "Batch": batch}).encode()
    emu.faults.inject("GetBatch", "answer", count=None, status=200, body=body)
    status, answer, _ = invoke.post(DOC)
    [result] = answer["results"]
    assert status == 502 and result["status"] == "failed" and result["error"]["code"] == "InvalidResponse"
    assert emu.calls(action="UpdateBatch") == []


def test_an_answer_holding_nan_is_not_imms(invoke, emu):
    body = b'{"RequestId": "R", "Batch": {"Id": "b", "State": "Ready", "Tags": {"n": NaN}}}'
    emu.faults.inject("GetBatch", "answer", count=None, status=200, body=body)
    status, answer, _ = invoke.post({**DOC, "DryRun": True})
    assert status == 502 and answer["results"][0]["error"]["code"] == "InvalidResponse"


def test_an_error_body_that_is_not_json_is_retried_then_failed(invoke, emu):
    emu.faults.inject(
        "UpdateBatch", "answer", count=None, status=400, body=b"<html>no</html>", content_type="text/html"
    )
    status, answer, _ = invoke.post(DOC)
    assert status == 502 and answer["results"][0]["error"]["code"] == "InvalidResponse"


# -- final when it cannot succeed ----------------------------------------------------------------------------------
def test_a_request_that_cannot_be_built_is_rejected_not_retried(invoke, emu, monkeypatch):
    from imm_batch_updater import imm

    def broken(*args, **kwargs):
        raise TypeError("a bug while building the request")

    monkeypatch.setattr(imm, "update_request", broken)
    status, answer, _ = invoke.post(DOC)
    [result] = answer["results"]
    assert status == 422 and result["status"] == "rejected" and result["error"]["code"] == "RequestNotBuilt"
    assert emu.calls(action="UpdateBatch") == []
    [direct] = invoke.direct(DOC)["results"]  # an event trigger: final, so nothing is raised for the platform
    assert direct["status"] == "rejected"


def test_a_request_the_sdk_cannot_encode_is_rejected_not_retried(invoke, emu, monkeypatch):
    """A failure inside the SDK before anything is sent (here: its form encoder) is ours: final."""
    from alibabacloud_tea_openapi import utils

    def unencodable(*args, **kwargs):
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(utils.Utils, "to_form", staticmethod(unencodable))
    status, answer, _ = invoke.post(DOC)
    [result] = answer["results"]
    assert status == 422 and result["status"] == "rejected" and result["error"]["code"] == "RequestNotSent"
    assert result["attempts"] == 2 and emu.calls(action="UpdateBatch") == []  # GetBatch, one UpdateBatch try


def test_a_bug_while_applying_is_rejected_and_reported(invoke, emu, monkeypatch, capsys):
    from imm_batch_updater import app

    def bug(*args, **kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(app, "apply_update", bug)
    [result] = invoke.direct(DOC)["results"]
    assert result["status"] == "rejected" and result["error"]["code"] == "InternalError"
    assert '"unexpected error"' in capsys.readouterr().out


def test_a_bug_in_a_source_is_rejected_and_http_still_answers(invoke, emu, monkeypatch):
    from imm_batch_updater.sources import http

    monkeypatch.setattr(http, "decode_body", lambda *a, **k: 1 / 0)
    status, answer, _ = invoke.post(DOC)
    assert status == 422 and answer["results"][0]["error"]["code"] == "InternalError"


# -- a deadline per call, not per read -----------------------------------------------------------------------------
TIMEOUT_S = 3.0  # the function's timeout in these tests; the deadline is 0.5 s before it


def timed(call):
    t0 = time.monotonic()
    try:
        result = call()
    except DeliveryIncomplete as exc:
        result = exc
    return result, time.monotonic() - t0


def test_imm_trickling_its_answer_cannot_keep_the_invocation_past_its_timeout(invoke, emu):
    emu.faults.inject("GetBatch", "trickle", count=None, interval_ms=150)
    context = fc_context(invoke.sts, timeout=TIMEOUT_S)
    (status, answer, _), elapsed = timed(lambda: invoke.post(DOC, context=context))
    [result] = answer["results"]
    assert elapsed < TIMEOUT_S - 0.3, elapsed
    assert status == 502 and result["status"] == "failed" and result["error"]["code"] == "DeadlineExceeded"
    assert emu.calls(action="UpdateBatch") == []


def test_imm_trickling_an_update_answer_ends_as_failed_in_time(invoke, emu, fn_env):
    fn_env.setenv("IMM_PRECHECK", "false")
    emu.faults.inject("UpdateBatch", "trickle", count=None, interval_ms=150, headers=True)
    error, elapsed = timed(lambda: invoke.direct(DOC, context=fc_context(invoke.sts, timeout=TIMEOUT_S)))
    assert isinstance(error, DeliveryIncomplete) and "failed" in str(error)  # not final: the platform retries
    assert elapsed < TIMEOUT_S - 0.3, elapsed


def test_oss_trickling_an_object_cannot_keep_the_invocation(invoke, emu):
    from tests.triggers.events import oss_event, oss_record

    emu.oss.create_bucket("slow-bucket")
    emu.oss.put_object("slow-bucket", "a.json", json.dumps(DOC).encode())
    emu.faults.inject("GetObject", "trickle", count=None, interval_ms=150, service="oss")
    event = json.dumps(oss_event(oss_record("slow-bucket", "a.json"))).encode()
    error, elapsed = timed(lambda: handler.handler(event, fc_context(invoke.sts, timeout=TIMEOUT_S)))
    assert isinstance(error, DeliveryIncomplete), error
    assert elapsed < TIMEOUT_S - 0.3, elapsed


def test_mns_trickling_a_publish_cannot_keep_the_invocation(invoke, emu, fn_env, capsys):
    emu.mns.create_topic("results")
    fn_env.setenv("RESULT_MNS_TOPIC", "results")
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    emu.faults.inject("PublishMessage", "trickle", count=None, interval_ms=150, service="mns")
    result, elapsed = timed(lambda: invoke.direct(DOC, context=fc_context(invoke.sts, timeout=TIMEOUT_S)))
    assert result["results"][0]["status"] == "updated"
    assert elapsed < TIMEOUT_S - 0.3, elapsed
    assert '"sink failed"' in capsys.readouterr().out


class _Trickler(BaseHTTPRequestHandler):
    """An HTTP peer that sends its answer, status line first, one byte every 150 ms."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n" + b"x" * 20
        try:
            for byte in answer:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.15)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_a_webhook_receiver_trickling_cannot_keep_the_invocation(invoke, emu, fn_env, capsys):
    from tests.conftest import new_secret

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fn_env.setenv("RESULT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
        fn_env.setenv("RESULT_WEBHOOK_SECRET", new_secret())
        fn_env.setenv("RESULT_SINK_TIMEOUT_MS", "60000")
        result, elapsed = timed(lambda: invoke.direct(DOC, context=fc_context(invoke.sts, timeout=TIMEOUT_S)))
        assert result["results"][0]["status"] == "updated"
        assert elapsed < TIMEOUT_S - 0.3, elapsed
        assert '"sink failed"' in capsys.readouterr().out
    finally:
        server.shutdown()


def test_the_watchdog_shuts_down_a_blocked_read():
    """The mechanism itself, on a raw socket read: a per-read timeout of 60 s, a deadline 0.3 s away."""
    from imm_batch_updater.retry import Deadline
    from imm_batch_updater.watchdog import guard

    left, right = socket.socketpair()
    left.settimeout(60)
    t0 = time.monotonic()
    with guard(Deadline(0.3)) as watch:
        data = left.recv(10)  # blocks: nothing is ever sent
    assert watch.fired and data == b"" and time.monotonic() - t0 < 2
    left.close(), right.close()
