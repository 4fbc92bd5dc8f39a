"""Retries against injected IMM faults: what is retried, how often, how long, and what the platform sees."""

from __future__ import annotations

import time

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import FAILED, PROJECT, READY, fc_context

DOC = {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}}


@pytest.mark.parametrize(
    ("kind", "opts"),
    [
        ("throttle", {"status": 400}),
        ("throttle", {"status": 429}),
        ("throttle", {"status": 429, "retry_after": 30}),
        ("internal", {}),
        ("unavailable", {}),
        ("bad_gateway", {}),
        ("drop", {}),
    ],
)
def test_transient_faults_are_retried_until_success(invoke, emu, kind, opts):
    emu.faults.inject("UpdateBatch", kind, count=3, **opts)
    [result] = invoke.direct(DOC)["results"]
    assert result["status"] == "updated"
    assert result["attempts"] == 1 + 4  # GetBatch + 3 failed UpdateBatch + 1 good
    assert len(emu.calls(action="UpdateBatch")) == 4


def test_persistent_throttling_is_throttled_and_the_event_trigger_raises(invoke, emu):
    emu.faults.inject("UpdateBatch", "throttle", count=None, status=429)
    with pytest.raises(DeliveryIncomplete, match="throttled"):
        invoke.direct(DOC)
    assert len(emu.calls(action="UpdateBatch")) == 4  # IMM_MAX_ATTEMPTS default


def test_persistent_5xx_over_http_is_502_and_does_not_raise(invoke, emu):
    emu.faults.inject("GetBatch", "internal", count=None)
    status, body, _ = invoke.post(DOC)
    assert status == 502 and body["results"][0]["status"] == "failed"


def test_throttled_over_http_is_429(invoke, emu):
    emu.faults.inject("UpdateBatch", "throttle", count=None, status=400)
    assert invoke.post(DOC)[0] == 429


def test_max_attempts_is_configurable(invoke, emu, fn_env):
    fn_env.setenv("IMM_MAX_ATTEMPTS", "2")
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(DOC)
    assert len(emu.calls(action="UpdateBatch")) == 2


def test_client_errors_are_not_retried(invoke, emu):
    emu.faults.inject("UpdateBatch", "error", count=None, status=400, code="InvalidArgument", message="bad")
    [result] = invoke.direct(DOC)["results"]  # final: no raise
    assert result["status"] == "rejected" and len(emu.calls(action="UpdateBatch")) == 1


def test_retry_after_is_honoured(invoke, emu):
    emu.faults.inject("UpdateBatch", "throttle", count=1, status=429, retry_after=400)
    started = time.monotonic()
    [result] = invoke.direct(DOC)["results"]
    assert result["status"] == "updated" and time.monotonic() - started >= 0.4


def test_read_timeout_is_retried(invoke, emu, fn_env):
    fn_env.setenv("IMM_READ_TIMEOUT_MS", "300")
    emu.faults.inject("UpdateBatch", "latency", count=1, seconds=1.0)
    [result] = invoke.direct(DOC)["results"]
    assert result["status"] == "updated" and result["attempts"] == 3


def test_invocation_ends_within_the_function_timeout(invoke, emu, fn_env):
    # Each attempt hangs past the read timeout; the function timeout is 3 s (FC's default).
    fn_env.setenv("IMM_READ_TIMEOUT_MS", "10000")
    fn_env.setenv("IMM_MAX_ATTEMPTS", "20")
    emu.faults.inject("UpdateBatch", "latency", count=None, seconds=4.0)
    started = time.monotonic()
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(DOC, context=fc_context(invoke.sts, timeout=3))
    assert time.monotonic() - started < 3.0


def test_connection_refused_is_failed(invoke, fn_env):
    fn_env.setenv("IMM_ENDPOINT", "127.0.0.1:9")  # discard port: nothing listens
    fn_env.setenv("IMM_MAX_ATTEMPTS", "2")
    status, body, _ = invoke.post(DOC)
    assert status == 502 and body["results"][0]["error"]["code"] == "NetworkError"


def test_one_document_gets_every_attempt_for_each_call(invoke, emu):
    """The contract: at least 4 attempts by default. GetBatch throttled 3 times must not eat UpdateBatch's attempts."""
    emu.faults.inject("GetBatch", "throttle", count=3, status=429)
    emu.faults.inject("UpdateBatch", "throttle", count=3, status=429)
    emu.faults.inject("ResumeBatch", "unavailable", count=3)
    [result] = invoke.direct({**DOC, "Id": FAILED, "Resume": True})["results"]
    assert (result["status"], result["resumed"], result["attempts"]) == ("updated", True, 12)


def test_a_retry_storm_is_cut_off(invoke, emu):
    # 30 documents for 30 batches against an IMM that throttles everything: the delivery-wide retry budget
    # (3 x 3 for the first document, 2 per further one) stops well before 30 x 4 attempts; the platform retries
    # the delivery later.
    for i in range(30):
        emu.imm.create_batch(PROJECT, id=f"batch-storm-{i}", state="Ready")
    emu.faults.inject("UpdateBatch", "throttle", count=None, status=429)
    docs = [{"ProjectName": PROJECT, "Id": f"batch-storm-{i}", "Tags": {"k": "v"}} for i in range(30)]
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(docs)
    assert len(emu.calls(action="UpdateBatch")) <= 30 + 9 + 2 * 29 < 30 * 4


@pytest.mark.parametrize("remaining_ms", [200, 201, 999, 3000, 4500, 13_000, 60_000])
def test_one_attempt_ends_within_the_time_left(remaining_ms):
    """A connect that hangs, then a read that hangs: together still within the deadline (the contract: the invocation
    always ends within the function timeout)."""
    from imm_batch_updater.imm import attempt_timeouts

    read, connect = attempt_timeouts(remaining_ms, connect_timeout_ms=3000, read_timeout_ms=10_000)
    assert read + connect <= remaining_ms and read >= 100 and connect >= 100
    if remaining_ms >= 13_000:
        assert (read, connect) == (10_000, 3000)  # plenty of time: the configured timeouts


@pytest.mark.parametrize("retriable", [True, False])
def test_a_timeout_at_the_deadline_is_deadline_exceeded_even_when_the_watchdog_lags(monkeypatch, retriable):
    """The callers cut an SDK's timeout to the time left, so it fires at the deadline, as the watchdog does. Under
    load the SDK's timeout can win (CI saw `NetworkError` where the run before saw `DeadlineExceeded`): the code must
    not depend on which one did. A lagging watchdog thread is what cannot be made to happen here on demand, so its
    watch is replaced by one that never fires; a refusal (not retriable) keeps its own code."""
    from types import SimpleNamespace

    from imm_batch_updater import retry

    monkeypatch.setattr(retry.watchdog, "watch", lambda deadline: SimpleNamespace(fired=False))
    monkeypatch.setattr(retry.watchdog, "unwatch", lambda watch: None)
    deadline = retry.Deadline(0.3)

    def attempt(left_s: float) -> None:
        time.sleep(left_s)  # the SDK's read timeout, cut to what is left
        raise retry.CallError("NetworkError", "no answer", retriable=retriable)

    with pytest.raises(retry.CallError) as raised:
        retry.call(attempt, policy=retry.RetryPolicy(max_attempts=4), deadline=deadline, what="to send")
    assert raised.value.code == ("DeadlineExceeded" if retriable else "NetworkError")
    assert retry.attempts_of(raised.value) == 1
