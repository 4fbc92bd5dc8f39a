"""The sinks' share of the invocation's time, through handler.handler: with optional sinks configured, everything the
invocation does before its report (IMM calls, OSS reads, work-queue sends) stops early enough to leave the sinks a
reserved share (retry.sink_reserve_s), so that under a slow IMM the dead letters still reach them; without optional
sinks the IMM side keeps the whole time.

Each slow peer here is the emulator holding its answer past the whole invocation (SLOW_S): before the reserve, the
IMM (or OSS, or MNS queue) call ran to the invocation's deadline and the sinks found no time left ("sink failed",
DeadlineExceeded), so the dead letters were only in the log.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from imm_batch_updater.app import DeliveryIncomplete
from imm_batch_updater.config import Settings
from imm_batch_updater.context import InvocationContext
from tests.conftest import PROJECT, READY, fc_context, new_secret
from tests.fleet.selections import FLEET, selector_doc
from tests.sinks.conftest import Reply
from tests.triggers.events import oss_event, oss_record

TOPIC = "imm-results"
TIMEOUT_S = 3  # FC's default function timeout: its deadline is 2.5 s, the sinks' reserve 1 s of it
SLOW_S = 4.0  # longer than the whole invocation
UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"owner": "media-team"}}
INVALID = {"ProjectName": PROJECT, "Id": READY}  # no change requested: `invalid`, final, a dead letter, no IMM call


@pytest.fixture
def sink_secret():
    return new_secret()


@pytest.fixture
def all_sinks(fn_env, emu, receiver, sink_secret):
    """Every optional sink: the MNS topic on the emulator, the webhook on `receiver` (`/hook`), and the FC function
    on `receiver` too (it stands in for the FC API: `/2023-03-30/functions/...`, answered 202)."""
    emu.mns.create_topic(TOPIC)
    receiver.default = Reply(202, headers={"x-fc-request-id": "fc-req-1"})
    fn_env.setenv("RESULT_MNS_TOPIC", TOPIC)
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    fn_env.setenv("RESULT_WEBHOOK_URL", receiver.url + "/hook")
    fn_env.setenv("RESULT_WEBHOOK_SECRET", sink_secret)
    fn_env.setenv("RESULT_FC_FUNCTION", "outcome-consumer")
    fn_env.setenv("RESULT_FC_ENDPOINT", receiver.url)
    return fn_env


def notified(emu, receiver, sink_secret) -> dict[str, list[tuple[str, bool]]]:
    """(status, dead_letter) of every result each sink delivered."""

    def pairs(results):
        return [(r["status"], r["dead_letter"]) for r in results]

    hooks = [r for r in receiver.requests if r.path == "/hook"]
    invokes = [r for r in receiver.requests if r.path.startswith("/2023-03-30/functions/outcome-consumer")]
    return {
        "mns_topic": pairs(json.loads(m["body"])["data"]["result"] for m in emu.mns.published(TOPIC)),
        "webhook": pairs(
            r for h in hooks for r in Webhook(sink_secret).verify(h.body.decode(), h.headers)["data"]["results"]
        ),
        "fc_function": pairs(r for i in invokes for r in json.loads(i.body)["data"]["results"]),
    }


def timed(run) -> float:
    started = time.monotonic()
    with pytest.raises(DeliveryIncomplete):
        run()
    return time.monotonic() - started


def test_a_slow_imm_leaves_the_sinks_their_reserve_and_the_dead_letters_arrive(
    all_sinks, invoke, emu, sts, receiver, sink_secret
):
    """IMM holds every answer past the whole invocation: the update is `failed` (not final: the platform retries
    it), the `invalid` document next to it is a dead letter, and every configured sink gets both."""
    emu.faults.inject("*", "latency", count=None, service="imm", seconds=SLOW_S)
    took = timed(lambda: invoke.direct([UPDATE, INVALID], context=fc_context(sts, timeout=TIMEOUT_S)))
    assert took < TIMEOUT_S
    expected = [("failed", False), ("invalid", True)]
    assert notified(emu, receiver, sink_secret) == {"mns_topic": expected, "webhook": expected, "fc_function": expected}


def test_slow_work_queue_sends_leave_the_sinks_their_reserve(
    all_sinks, invoke, emu, sts, receiver, sink_secret, work_queue
):
    """A fan-out's BatchSendMessage is held past the whole invocation: its batches are `failed` (the platform
    delivers the selector again), and the dead letter of the same delivery still reaches every sink."""
    emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    emu.faults.inject("BatchSendMessage", "latency", count=None, service="mns", seconds=SLOW_S)
    took = timed(lambda: invoke.direct([selector_doc(), INVALID], context=fc_context(sts, timeout=TIMEOUT_S)))
    assert took < TIMEOUT_S
    expected = [("failed", False)] * 30 + [("invalid", True)]
    assert notified(emu, receiver, sink_secret) == {"mns_topic": expected, "webhook": expected, "fc_function": expected}


def test_a_slow_oss_read_leaves_the_sinks_their_reserve(all_sinks, invoke, emu, sts, receiver, sink_secret):
    """The uploaded object is held past the whole invocation: that record is `failed`, and the record next to it
    that can never be read (a region that is not a region id) is a dead letter every sink gets."""
    emu.oss.put_object("demo-bucket", "requests/a.json", json.dumps(UPDATE).encode())
    emu.faults.inject("GetObject", "latency", count=None, service="oss", seconds=SLOW_S)
    bad = {**oss_record("demo-bucket", "requests/b.json", etag="E2"), "region": "not a region"}
    event = oss_event(bad, oss_record("demo-bucket", "requests/a.json", etag="E1"))
    took = timed(
        lambda: invoke.direct(None, raw=json.dumps(event).encode(), context=fc_context(sts, timeout=TIMEOUT_S))
    )
    assert took < TIMEOUT_S
    expected = [("invalid", True), ("failed", False)]
    assert notified(emu, receiver, sink_secret) == {"mns_topic": expected, "webhook": expected, "fc_function": expected}


# GetBatch answering after this long: within its first attempt's read timeout when the IMM side has the whole
# deadline of a 3 s function (2.5 s: the connect may take a third, so the read gets 1.67 s), past it when the sinks'
# 1 s is set aside (1.5 s: the read gets 1.0 s, and a second attempt no longer fits).
SLOW_GET_S = 1.2


def test_without_optional_sinks_the_imm_side_keeps_the_whole_time(invoke, emu, sts):
    emu.faults.inject("GetBatch", "latency", count=None, service="imm", seconds=SLOW_GET_S)
    [result] = invoke.direct(UPDATE, context=fc_context(sts, timeout=TIMEOUT_S))["results"]
    assert (result["status"], result["attempts"]) == ("updated", 2)  # GetBatch's first attempt, then UpdateBatch


def test_with_an_optional_sink_the_same_slow_imm_is_cut_at_the_reserve(fn_env, invoke, emu, sts, receiver):
    """The other side of the test above: the same slow GetBatch, with a webhook sink configured, is past the IMM
    side's deadline; the update is `failed` (retried by the platform) and the webhook is notified of it."""
    fn_env.setenv("RESULT_WEBHOOK_URL", receiver.url + "/hook")
    fn_env.setenv("RESULT_WEBHOOK_SECRET", new_secret())
    emu.faults.inject("GetBatch", "latency", count=None, service="imm", seconds=SLOW_GET_S)
    took = timed(lambda: invoke.direct(UPDATE, context=fc_context(sts, timeout=TIMEOUT_S)))
    assert took < TIMEOUT_S
    [hook] = receiver.requests
    assert [r["status"] for r in json.loads(hook.body)["data"]["results"]] == ["failed"]


@pytest.mark.parametrize(
    ("timeout_s", "reserve_s"),
    [
        (1, 0.25),  # 0.5 s of deadline: half of it, so the IMM side keeps at least half
        (3, 1.0),  # FC's default: the 1 s floor
        (10, 1.0),
        (30, 3.0),  # 10 %
        (60, 5.0),  # s.yaml's timeout: the 5 s cap
        (900, 5.0),
    ],
)
def test_the_reserve_is_a_tenth_of_the_timeout_at_least_1s_at_most_5s_and_half_the_deadline(timeout_s, reserve_s):
    from imm_batch_updater.retry import Deadline, sink_reserve_s

    assert sink_reserve_s(timeout_s, Deadline.for_timeout(timeout_s).budget_s) == pytest.approx(reserve_s)


def test_the_context_sets_the_reserve_aside_only_when_optional_sinks_are_configured(monkeypatch, sts):
    monkeypatch.delenv("RESULT_WEBHOOK_URL", raising=False)
    plain = InvocationContext(fc_context(sts, timeout=60), Settings.current())
    assert plain.deadline is plain.sinks_deadline  # the same object: nothing to compute on the warm path
    monkeypatch.setenv("RESULT_WEBHOOK_URL", "https://example.com/hook")
    with_sink = InvocationContext(fc_context(sts, timeout=60), Settings.current())
    gap = with_sink.sinks_deadline.expires_at - with_sink.deadline.expires_at
    assert gap == pytest.approx(5.0)
    assert with_sink.sinks_deadline.expires_at - time.monotonic() == pytest.approx(55.0, abs=0.5)


# -- the timeout FC gives, whatever it is ---------------------------------------------------------------------------
TIMEOUT_VALUES = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=True, allow_infinity=True),
)


@example(86_400, True)  # FC 3.0's largest timeout (the fc3 component's schema: 1 to 86400)
@example(10**400, True)  # float() of it raises OverflowError, not ValueError
@example(-(10**400), False)
@example("1" * 400, True)
@example(0.1, True)
@example(1, True)
@given(value=TIMEOUT_VALUES, sinks=st.booleans())
def test_every_timeout_value_gives_two_ordered_deadlines_within_it(value, sinks):
    """FC's `function.timeout` is an integer from 1 to 86400; a context may hold anything (local runs pass a dict).
    No value makes the context raise (it is built before anything is caught: the handler would raise and the
    platform retry for ever); a usable one bounds both deadlines, the calls' no later than the sinks'."""
    env = {"RESULT_WEBHOOK_URL": "https://example.com/hook"} if sinks else {}
    ctx = InvocationContext({"function": {"timeout": value}}, Settings.from_env(env))
    assert 0 < ctx.timeout_s <= 86_400
    assert ctx.deadline.expires_at <= ctx.sinks_deadline.expires_at
    assert ctx.deadline.budget_s > 0 and ctx.sinks_deadline.budget_s <= max(ctx.timeout_s - 0.5, 0.1)
    if (sinks and ctx.timeout_s >= 3) or not sinks:  # the IMM side keeps at least half of the deadline
        assert ctx.deadline.budget_s >= ctx.sinks_deadline.budget_s / 2
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 86_400:
        assert ctx.timeout_s == value  # every timeout FC can give is taken as given


def test_a_timeout_too_large_for_a_float_is_answered_not_raised(invoke, sts):
    context = fc_context(sts)
    context.function.timeout = 10**400
    result = invoke.direct(INVALID, context=context)
    assert [r["status"] for r in result["results"]] == ["invalid"]
