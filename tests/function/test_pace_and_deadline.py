"""IMM_MAX_QPS against the invocation's own time.

A document with the precheck (the default) needs two IMM calls in one invocation, GetBatch then UpdateBatch, and the
pacer starts them at least 1/IMM_MAX_QPS s apart. When that is longer than the IMM calls have (the function timeout
minus its margin, minus the optional sinks' reserve), the UpdateBatch's turn never comes before the deadline. The
pace is the user's share of the account's quota, so it is never raised: the document is `failed` with a
`ConfigurationError` that says which settings to change (retried by the platform: it applies once they are), not a
`throttled` that looks transient. Driven through handler.handler against the emulator, with FC's default 3 s timeout
and an MNS topic sink (IMM calls end by 1.5 s).
"""

from __future__ import annotations

import time

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from imm_batch_updater.ratelimit import pacer
from tests.conftest import PROJECT, READY, fc_context
from tests.sinks.conftest import log_records, messages

TOPIC = "imm-results"
UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"owner": "media-team"}}


@pytest.fixture
def fresh_pacers():
    pacer.cache_clear()  # the pacer is the instance's: each test starts as a new instance
    yield
    pacer.cache_clear()


@pytest.mark.parametrize("qps", ["0.5", "0.7"])
def test_a_pace_too_slow_for_the_invocation_is_a_configuration_error_not_a_faster_pace(
    invoke, emu, fn_env, sts, fresh_pacers, capsys, qps
):
    emu.mns.create_topic(TOPIC)
    fn_env.setenv("RESULT_MNS_TOPIC", TOPIC)
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    fn_env.setenv("IMM_MAX_QPS", qps)
    started = time.monotonic()
    capsys.readouterr()
    with pytest.raises(DeliveryIncomplete):  # not final: FC's retry applies it once the setting is fixed
        invoke.direct(UPDATE, context=fc_context(sts, timeout=3))
    assert time.monotonic() - started < 2.5  # the invocation's deadline
    [result] = messages(log_records(capsys), "outcome")
    assert result["status"] == "failed" and result["error_code"] == "ConfigurationError"
    message = result["error_message"]
    assert "IMM_MAX_QPS" in message and "function timeout" in message
    assert result["attempts"] == 1  # the GetBatch; the refused UpdateBatch is not counted
    assert [c.action for c in emu.calls(service="imm")] == ["GetBatch"]  # never sent faster than the pace
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] != {"owner": "media-team"}
    # The redelivery after the fix (a longer timeout) applies it.
    pacer.cache_clear()
    again = invoke.direct(UPDATE, context=fc_context(sts, timeout=60))
    assert [r["status"] for r in again["results"]] == ["updated"]


def test_a_pace_that_fits_the_time_is_kept_as_given(invoke, emu, fn_env, sts, fresh_pacers, capsys):
    """60 s (s.yaml) leaves 55 s: IMM_MAX_QPS 0.5 (2 s apart) fits, so it is the quota and is not raised."""
    fn_env.setenv("IMM_MAX_QPS", "0.5")
    result = invoke.direct(UPDATE, context=fc_context(sts, timeout=60))
    assert [r["status"] for r in result["results"]] == ["updated"]
    calls = emu.calls(service="imm")
    assert [c.action for c in calls] == ["GetBatch", "UpdateBatch"]
    assert calls[1].started - calls[0].started >= 1.9  # 1 / 0.5 s apart (as the emulator read them): the user's pace
    assert "IMM_MAX_QPS" not in capsys.readouterr().out


@pytest.mark.parametrize("qps", ["1", "0.5"])
def test_a_pace_that_fits_but_is_busy_is_throttled_not_a_configuration_error(
    invoke, emu, fn_env, sts, fresh_pacers, capsys, qps
):
    """Two documents for two batches in 2.5 s (a 3 s timeout, no optional sink): the pace fits one document's two
    calls when the pacer is idle (1 or 2 s apart), not the second document's. That one finds the pacer busy:
    `throttled`, which a later delivery can get through, not a `ConfigurationError` that says it can never start;
    and every call is at least 1/IMM_MAX_QPS after the one before."""
    fn_env.setenv("IMM_MAX_QPS", qps)
    fn_env.setenv("UPDATE_CONCURRENCY", "1")
    docs = [UPDATE, {"ProjectName": PROJECT, "Id": "batch-demo-failed", "Tags": {"owner": "media-team"}}]
    capsys.readouterr()
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(docs, context=fc_context(sts, timeout=3))
    statuses = [(r["status"], r.get("error_code")) for r in messages(log_records(capsys), "outcome")]
    assert statuses == [("updated", None), ("throttled", "RateLimited")]
    calls = emu.calls(service="imm")
    gaps = [b.started - a.started for a, b in zip(calls, calls[1:], strict=False)]
    assert len(calls) >= 2 and all(gap >= 1 / float(qps) - 0.1 for gap in gaps)
    pacer.cache_clear()  # an idle pacer: the second document alone fits
    alone = invoke.direct(docs[1], context=fc_context(sts, timeout=3))
    assert [r["status"] for r in alone["results"]] == ["updated"]


def test_a_call_that_waited_for_its_turn_gets_timeouts_cut_to_what_is_left_after_the_wait(
    invoke, emu, fn_env, sts, fresh_pacers, monkeypatch
):
    """README Time budget: "the connect and read timeouts together are cut to the time left". The pacer's wait
    happens inside the attempt: the UpdateBatch below waits 1 s for its turn, and its timeouts must be cut to what
    is left after that wait, not to what was left when the attempt began (the watchdog is the only other bound, and
    it cannot cut a connect that is still resolving the host)."""
    from imm_batch_updater import imm

    seen: list[tuple[float, int, int]] = []
    real = imm._runtime_options

    def recorded(read_ms: int, connect_ms: int):
        seen.append((time.monotonic(), read_ms, connect_ms))
        return real(read_ms, connect_ms)

    monkeypatch.setattr(imm, "_runtime_options", recorded)
    fn_env.setenv("IMM_MAX_QPS", "1")
    started = time.monotonic()
    result = invoke.direct(UPDATE, context=fc_context(sts, timeout=3))  # deadline: 2.5 s after the start
    assert [r["status"] for r in result["results"]] == ["updated"]
    assert len(seen) == 2 and seen[1][0] - seen[0][0] >= 0.9  # the UpdateBatch waited for its turn
    for at, read_ms, connect_ms in seen:
        left_ms = (started + 2.5 - at) * 1000
        assert read_ms + connect_ms <= left_ms + 50, (read_ms, connect_ms, left_ms)


def _outcomes(capsys):
    import json as _json

    return [_json.loads(line) for line in capsys.readouterr().out.splitlines() if '"msg":"outcome"' in line]


def test_a_turn_the_pace_cannot_give_is_not_retried_nor_counted_as_an_imm_call(
    invoke, emu, fn_env, sts, fresh_pacers, capsys
):
    """A turn past the deadline only moves later: trying again within the invocation can never get one. Retrying
    it spent the delivery's shared retry budget (which the other documents' real retries need) and reported each
    refusal as an IMM call made (`attempts`, README Outcomes: "IMM calls made")."""
    fn_env.setenv("IMM_MAX_QPS", "1")
    fn_env.setenv("UPDATE_CONCURRENCY", "1")
    fn_env.setenv("IMM_PRECHECK", "false")
    docs = [{"ProjectName": PROJECT, "Id": i, "Tags": {"owner": "media-team"}} for i in (READY, "batch-demo-failed")]
    docs += [{**docs[0], "Tags": {"owner": f"o{n}"}} for n in range(3)]
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(docs, context=fc_context(sts, timeout=3))
    lines = _outcomes(capsys)
    assert sum(line["attempts"] for line in lines) == len(emu.calls(service="imm"))
    throttled = [line for line in lines if line["status"] == "throttled"]
    assert throttled and all(line["attempts"] == 0 for line in throttled)
