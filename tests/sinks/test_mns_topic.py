"""MNS topic sink: the real aliyun-mns-sdk publishing to the emulator's MNS, through handler.handler."""

from __future__ import annotations

import json

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from imm_batch_updater.config import Settings
from imm_batch_updater.outcome import Detail, ErrorInfo, Outcome, Status
from imm_batch_updater.sinks import mns_topic
from imm_batch_updater.sinks.base import Invocation
from tests.conftest import PROJECT, READY, RUNNING, StsKey, fc_context
from tests.fleet.selections import FLEET, selector_doc
from tests.sinks.conftest import log_records, messages

TOPIC = "imm-results"
TAGS = {"Tags": {"owner": "media-team"}}
TWO = [{"ProjectName": PROJECT, "Id": READY, **TAGS}, {"ProjectName": PROJECT, "Id": RUNNING, **TAGS}]


@pytest.fixture
def mns_env(fn_env, emu):
    emu.mns.create_topic(TOPIC)
    fn_env.setenv("RESULT_MNS_TOPIC", TOPIC)
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    return fn_env


def bodies(emu, topic=TOPIC):
    return [json.loads(m["body"]) for m in emu.mns.published(topic)]


def test_one_message_per_outcome_with_status_tag_and_properties(mns_env, invoke, emu, sts):
    result = invoke.direct(TWO)
    published = emu.mns.published(TOPIC)
    assert [m["tag"] for m in published] == ["updated", "conflict"]
    assert published[0]["properties"] == {
        "status": "updated",
        "final": "true",
        "dead_letter": "false",
        "project": PROJECT,
        "batch_id": READY,
    }
    assert published[1]["properties"]["dead_letter"] == "true"
    assert published[1]["property_types"]["final"] == "BOOLEAN"
    notes = bodies(emu)
    assert {n["type"] for n in notes} == {"imm_batch_updater.outcome"}
    for note, returned in zip(notes, result["results"], strict=True):
        sent = note["data"]["result"]
        assert {k: v for k, v in sent.items() if k not in ("final", "dead_letter", "source")} == returned
        assert note["data"]["source"] == "direct" and note["data"]["function"] == "imm-batch-updater"
    # Signed with the invocation's STS key (the emulator checks the signature and the security token).
    assert [c.access_key_id for c in emu.calls(action="PublishMessage")] == [sts.access_key_id] * 2
    assert all(c.status == 201 for c in emu.calls(action="PublishMessage"))


def test_every_invocation_signs_with_its_own_fresh_credentials(mns_env, invoke, emu):
    keys = [StsKey(), StsKey()]
    for key in keys:
        emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
        invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}, context=fc_context(key))
        emu.keyring.remove(key.access_key_id)  # the old key is gone: reusing it would fail
    assert [c.access_key_id for c in emu.calls(action="PublishMessage")] == [k.access_key_id for k in keys]
    assert len(emu.mns.published(TOPIC)) == 2


def test_a_5xx_is_retried_once(mns_env, invoke, emu):
    emu.faults.inject("PublishMessage", "internal", count=1)
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert [c.status for c in emu.calls(action="PublishMessage")] == [500, 201]
    assert len(emu.mns.published(TOPIC)) == 1


def test_persistent_5xx_the_outcome_is_still_logged_and_the_sink_failure_reported(mns_env, invoke, emu, capsys):
    emu.faults.inject("PublishMessage", "internal", count=None)
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert result["results"][0]["status"] == "updated"  # the update itself is unaffected
    records = log_records(capsys)
    [outcome] = messages(records, "outcome")
    assert outcome["status"] == "updated"
    [failed] = messages(records, "sink failed")
    assert failed["sink"] == "mns_topic" and failed["level"] == "ERROR"
    [detail] = messages(records, "sink delivery error")
    assert detail["error_code"] == "InternalError" and detail["published"] == 0 and detail["total"] == 1
    assert records.index(outcome) < records.index(failed)  # the log line comes first
    assert len(emu.calls(action="PublishMessage")) == 2  # RESULT_SINK_ATTEMPTS default
    assert emu.mns.published(TOPIC) == []


def test_a_missing_topic_is_not_retried(mns_env, invoke, emu, capsys):
    mns_env.setenv("RESULT_MNS_TOPIC", "no-such-topic")
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert [c.status for c in emu.calls(action="PublishMessage")] == [404]
    [detail] = messages(log_records(capsys), "sink delivery error")
    assert detail["error_code"] == "TopicNotExist"


def test_denied_topic_fails_the_sink_not_the_invocation(mns_env, invoke, emu, capsys):
    emu.mns.deny(TOPIC)
    result = invoke.direct(TWO)
    assert [r["status"] for r in result["results"]] == ["updated", "conflict"]
    records = log_records(capsys)
    assert len(messages(records, "outcome")) == 2
    assert [r["sink"] for r in messages(records, "sink failed")] == ["mns_topic"]
    assert messages(records, "sink delivery error")[0]["error_code"] == "AccessDenied"
    assert len(emu.calls(action="PublishMessage")) == 1  # stops at the first refusal


def test_not_final_outcomes_are_notified_before_the_platform_retry(mns_env, invoke, emu, capsys):
    mns_env.setenv("RESULT_SINK_FILTER", "failures")
    emu.faults.inject("GetBatch", "unavailable", count=None)
    with pytest.raises(DeliveryIncomplete):
        invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    [message] = emu.mns.published(TOPIC)
    assert message["tag"] == "failed" and message["properties"]["final"] == "false"


@pytest.mark.parametrize("trigger", [TOPIC, TOPIC.upper(), f"acs:mns:cn-hangzhou:1234567890:/topics/{TOPIC}"])
def test_refuses_to_publish_to_a_trigger_topic(mns_env, invoke, emu, capsys, trigger):
    mns_env.setenv("TRIGGER_MNS_TOPICS", f"other-topic, {trigger}")
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert result["results"][0]["status"] == "updated"
    assert emu.mns.published(TOPIC) == [] and emu.calls(action="PublishMessage") == []
    records = log_records(capsys)
    [refused] = messages(records, "sink refused")
    assert refused["level"] == "ERROR" and refused["sink"] == "mns_topic" and "TRIGGER_MNS_TOPICS" in refused["reason"]
    assert len(messages(records, "outcome")) == 1  # the outcome is still logged


def test_a_different_trigger_topic_does_not_block_publishing(mns_env, invoke, emu):
    mns_env.setenv("TRIGGER_MNS_TOPICS", "imm-requests")
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert len(emu.mns.published(TOPIC)) == 1


@pytest.mark.parametrize(
    ("global_filter", "mns_filter", "tags"),
    [
        (None, None, ["updated", "conflict"]),
        ("all", None, ["updated", "conflict"]),
        ("failures", None, ["conflict"]),
        ("dead_letters", None, ["conflict"]),
        ("all", "dead_letters", ["conflict"]),  # the per-sink filter wins
        ("dead_letters", "all", ["updated", "conflict"]),
    ],
)
def test_filter(mns_env, invoke, emu, global_filter, mns_filter, tags):
    if global_filter:
        mns_env.setenv("RESULT_SINK_FILTER", global_filter)
    if mns_filter:
        mns_env.setenv("RESULT_MNS_FILTER", mns_filter)
    invoke.direct(TWO)
    assert [m["tag"] for m in emu.mns.published(TOPIC)] == tags


def test_nothing_selected_means_no_request(mns_env, invoke, emu):
    mns_env.setenv("RESULT_SINK_FILTER", "dead_letters")
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert emu.calls(action="PublishMessage") == []


def test_default_endpoint_from_account_and_region(sts):
    from imm_batch_updater.context import InvocationContext
    from tests.conftest import fc_context

    config = mns_topic.Config(TOPIC)

    def ctx(region="cn-shanghai", account="1234567890", **env):
        context = fc_context(sts, region=region)
        context.account_id = account
        return InvocationContext(context, Settings.from_env(env))

    assert mns_topic.endpoint_for(config, ctx()) == "https://1234567890.mns.cn-shanghai.aliyuncs.com"
    vpc = ctx(IMM_NETWORK="vpc")
    assert mns_topic.endpoint_for(config, vpc) == "https://1234567890.mns.cn-shanghai-internal.aliyuncs.com"
    no_account = ctx("cn-beijing", None, FC_ACCOUNT_ID="999")
    assert mns_topic.endpoint_for(config, no_account) == "https://999.mns.cn-beijing.aliyuncs.com"
    local = mns_topic.Config(TOPIC, endpoint="http://127.0.0.1:9100/")
    assert mns_topic.endpoint_for(local, no_account) == "http://127.0.0.1:9100"
    bare = mns_topic.Config(TOPIC, endpoint="123.mns.cn-hangzhou.aliyuncs.com")
    assert mns_topic.endpoint_for(bare, no_account) == "https://123.mns.cn-hangzhou.aliyuncs.com"


def test_unknown_endpoint_is_reported_not_guessed(fn_env, invoke, emu, capsys, sts):
    fn_env.setenv("RESULT_MNS_TOPIC", TOPIC)
    context = fc_context(sts)
    context.account_id = None
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}, context=context)
    records = log_records(capsys)
    [problem] = messages(records, "sink not configured")
    assert problem["sink"] == "mns_topic" and "RESULT_MNS_ENDPOINT" in problem["reason"]
    assert len(messages(records, "outcome")) == 1


def test_an_oversized_result_is_trimmed_below_the_message_limit():
    details = tuple(Detail(f"/Tags/k{i}", "x" * 200) for i in range(1000))
    outcome = Outcome(Status.INVALID, error=ErrorInfo("InvalidDocument", "bad", details))
    body = mns_topic._body(outcome, Invocation("r", "f", "direct"), 1)
    assert len(body.encode()) <= mns_topic.MAX_MESSAGE_BYTES
    result = json.loads(body)["data"]["result"]
    assert (
        result["truncated"] is True and result["status"] == "invalid" and result["error"]["code"] == "InvalidDocument"
    )
    small = mns_topic._body(Outcome(Status.UPDATED, resumed=False), Invocation("r", "f", "direct"), 1)
    assert "truncated" not in json.loads(small)["data"]["result"]


def test_the_dead_letters_are_published_when_the_time_runs_out(mns_env, invoke, emu, sts, work_queue):
    """A fan-out's hundreds of `queued` results are one PublishMessage each: at a real MNS round trip the
    invocation's time ran out on them and the dead letter of the same delivery (last) was never published."""
    emu.imm.create_batches(FLEET, 300, state="Failed", tags={"tier": "gold"})
    emu.faults.inject("PublishMessage", "latency", count=None, service="mns", seconds=0.02)
    missing = {"ProjectName": PROJECT, "Id": "batch-that-does-not-exist", "Tags": {"owner": "media-team"}}
    result = invoke.direct([selector_doc(MaxBatches=1000), missing], context=fc_context(sts, timeout=4))
    assert [r["status"] for r in result["results"]][-2:] == ["queued", "not_found"]
    published = [b["data"]["result"] for b in bodies(emu)]
    assert 0 < len(published) < 301  # the time ran out before every outcome was published
    assert (published[-1]["status"], published[-1]["batch_id"]) == ("not_found", "batch-that-does-not-exist")
    assert all(r["status"] == "queued" for r in published[:-1])


# -- a topic created with a MaximumMessageSize below 64 KB ----------------------------------------------------------
SMALL_TOPIC = "imm-results-1k"


@pytest.fixture
def small_topic(mns_env, emu):
    emu.mns.create_topic(SMALL_TOPIC, maximum_message_size=1024)
    mns_env.setenv("RESULT_MNS_TOPIC", SMALL_TOPIC)
    return SMALL_TOPIC


def test_a_notification_the_topic_refuses_for_size_is_sent_again_truncated(small_topic, invoke, emu, capsys):
    """MNS refuses a body over the topic's MaximumMessageSize (400 InvalidArgument): the notification is published
    again as an oversized one is (without `diff` and `error.details`, `"truncated": true`); the log keeps it all."""
    bad = {"ProjectName": PROJECT, "Id": READY, "Tags": {f"k{i}": [i] for i in range(30)}}  # 20 error details
    result = invoke.direct([bad, {"ProjectName": PROJECT, "Id": READY, **TAGS}])
    assert [r["status"] for r in result["results"]] == ["invalid", "updated"]
    assert len(json.dumps(result["results"][0])) > 1024
    published = [json.loads(m["body"])["data"]["result"] for m in emu.mns.published(SMALL_TOPIC)]
    assert [(r["status"], r.get("truncated")) for r in published] == [("invalid", True), ("updated", None)]
    assert published[0]["error"]["code"] == result["results"][0]["error"]["code"]
    assert "details" not in published[0]["error"] and "details" in result["results"][0]["error"]
    assert [c.status for c in emu.calls(action="PublishMessage")] == [400, 201, 201]
    records = log_records(capsys)
    assert messages(records, "sink failed") == []
    assert len(messages(records, "outcome")[0]["error_details"]) == 20  # the log line keeps everything


# An outcome whose notification stays over 1 KB even truncated: 128-character names and IMM's message (500 at most).
LONG = {"ProjectName": "p" * 128, "Id": "b" * 128, **TAGS}


@pytest.fixture
def refuse_long(small_topic, mns_env, emu):
    """The next UpdateBatch is refused with a long message, straight away (no precheck)."""
    mns_env.setenv("IMM_PRECHECK", "false")
    emu.faults.inject("UpdateBatch", "error", count=1, status=400, code="InvalidParameter", message="m" * 900)


def test_a_notification_too_large_even_truncated_is_a_final_sink_failure_naming_the_topic(
    refuse_long, invoke, emu, capsys
):
    result = invoke.direct(LONG)
    assert result["results"][0]["status"] == "rejected"  # the update's outcome is unaffected
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})  # the next invocation's notification still goes
    assert [json.loads(m["body"])["data"]["result"]["status"] for m in emu.mns.published(SMALL_TOPIC)] == ["updated"]
    # Truncation removes nothing from this one (no diff, no details, a message under 1,000 characters): it is
    # refused once, never sent again only to carry `"truncated": true` and a new timestamp.
    assert [c.status for c in emu.calls(action="PublishMessage")] == [400, 201]
    records = log_records(capsys)
    [failed] = messages(records, "sink failed")
    assert failed["sink"] == "mns_topic"
    [detail] = messages(records, "sink delivery error")
    assert detail["error_code"] == "NotificationTooLarge" and detail["published"] == 0 and detail["total"] == 1
    assert SMALL_TOPIC in detail["error_message"] and "MaximumMessageSize" in detail["error_message"]


def test_a_size_refusal_does_not_stop_the_other_notifications(mns_env, refuse_long, invoke, emu, capsys):
    mns_env.setenv("UPDATE_CONCURRENCY", "1")  # in delivery order: the fault answers LONG's UpdateBatch
    result = invoke.direct([LONG, {"ProjectName": PROJECT, "Id": RUNNING, **TAGS}])
    assert [r["status"] for r in result["results"]] == ["rejected", "conflict"]
    published = [json.loads(m["body"])["data"]["result"]["status"] for m in emu.mns.published(SMALL_TOPIC)]
    assert published == ["conflict"]
    [detail] = messages(log_records(capsys), "sink delivery error")
    assert (detail["error_code"], detail["published"], detail["total"]) == ("NotificationTooLarge", 1, 2)


def test_the_dead_letters_are_published_in_time_when_every_notification_before_them_is_refused(
    small_topic, mns_env, invoke, emu, sts, capsys
):
    """The pacing that keeps time for the dead letters measured only published messages: while the topic refused
    every notification before them for its size (nothing published yet), it never skipped one, and the slow
    refusals used up the time the dead letter at the end needed."""
    mns_env.setenv("IMM_PRECHECK", "false")
    mns_env.setenv("IMM_MAX_ATTEMPTS", "1")
    emu.faults.inject("UpdateBatch", "error", count=None, status=500, code="InternalError", message="m" * 900)
    emu.faults.inject("PublishMessage", "latency", count=None, service="mns", seconds=0.25)
    failing = [{**LONG, "Tags": {"n": i}} for i in range(20)]  # over 1 KB even truncated
    dead = {"ProjectName": PROJECT, "Id": READY}  # invalid: no Input, Actions or Tags
    with pytest.raises(DeliveryIncomplete):
        invoke.direct([*failing, dead], context=fc_context(sts, timeout=4))
    published = [json.loads(m["body"])["data"]["result"] for m in emu.mns.published(SMALL_TOPIC)]
    assert [(r["status"], r["index"]) for r in published] == [("invalid", 20)]
    assert len(emu.calls(action="PublishMessage")) < 21  # the refusals were cut short
    [detail] = messages(log_records(capsys), "sink delivery error")
    assert detail["error_code"] == "NotificationTooLarge" and "skipped for lack of time" in detail["error_message"]
