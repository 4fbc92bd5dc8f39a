"""A work queue created with a MaximumMessageSize below MNS's 64 KB default (MNS allows 1 KB to 64 KB).

MNS refuses a larger body with 400 InvalidArgument (emulator/mns.py has the wire facts and their sources), which can
never succeed when sent again: a message of several documents is split (halved) and sent again within the
invocation, and a single document that can never fit is `rejected` (final) with an error that names the queue and
its MaximumMessageSize, so the platform does not retry it for ever. Driven end to end: the MNS SDK sends to the
emulator's queue, the local pump delivers the messages back to `handler.handler`."""

from __future__ import annotations

import base64
import json

import pytest

from devtools.pump import Key, Pump
from tests.fleet.selections import ACTIONS, FLEET, selector_doc

SMALL = "small-work-queue"


@pytest.fixture
def small_queue(emu, fn_env):
    emu.mns.create_queue(SMALL, maximum_message_size=1024)
    fn_env.setenv("WORK_QUEUE", SMALL)
    fn_env.setenv("WORK_QUEUE_ENDPOINT", emu.url)
    fn_env.setenv("FANOUT_BATCHES", "20")
    return SMALL


def sent_documents(emu, queue=SMALL):
    return [json.loads(base64.b64decode(m["body"])) for m in emu.mns.queue_messages(queue)]


def test_messages_too_large_for_the_queue_are_split_until_they_fit(invoke, emu, small_queue, sts):
    ids = emu.imm.create_batches(FLEET, 60, state="Ready", tags={"tier": "gold"})
    status, body, _ = invoke.post(selector_doc())
    assert status == 202 and {(r["status"], r.get("queue")) for r in body["results"]} == {("queued", SMALL)}
    stored = emu.mns.queue_messages(SMALL)
    assert stored and all(len(m["body"]) <= 1024 for m in stored)  # as sent: base64
    messages = sent_documents(emu)
    assert sorted(d["Id"] for m in messages for d in m) == sorted(ids)  # every batch once: none lost, none twice
    assert all(isinstance(m, list) and 1 <= len(m) < 50 for m in messages)
    refused = [c for c in emu.calls(service="mns") if c.status == 400]
    assert refused  # MNS did refuse the first, larger, messages
    # The work is applied from the queue as before.
    pump = Pump(emu.url, SMALL, Key(sts.access_key_id, sts.access_key_secret, sts.security_token), _handler())
    pump.drain()
    assert pump.failed_deliveries == 0 and emu.mns.queue_messages(SMALL) == []
    assert all(emu.imm.get_batch(FLEET, i)["Actions"] == ACTIONS for i in ids)


def test_a_document_that_can_never_fit_the_queue_is_rejected_not_retried(invoke, emu, small_queue, capsys):
    ids = emu.imm.create_batches(FLEET, 25, state="Ready", tags={"tier": "gold"})
    big = [{"Name": "video/convert", "Parameters": ["x=" + "y" * 900]}]  # ~1.3 KB as sent: over 1 KB alone
    status, body, _ = invoke.post(selector_doc(Actions=big))
    results = body["results"]
    assert status == 422 and [r["batch_id"] for r in results] == ids
    assert {r["status"] for r in results} == {"rejected"}
    error = results[0]["error"]
    assert error["code"] == "WorkItemTooLarge"
    assert SMALL in error["message"] and "MaximumMessageSize" in error["message"]
    assert emu.mns.queue_messages(SMALL) == [] and emu.calls(action="UpdateBatch") == []
    # An event trigger does not raise: the result is final, the platform does not deliver it again.
    result = invoke.direct(selector_doc(Actions=big))
    assert {r["status"] for r in result["results"]} == {"rejected"}


def test_only_the_documents_that_cannot_fit_are_rejected(invoke, emu, small_queue):
    small_ids = emu.imm.create_batches(FLEET, 25, state="Ready", tags={"tier": "gold"})
    big_ids = emu.imm.create_batches(FLEET, 25, state="Ready", tags={"tier": "silver"})
    big = [{"Name": "video/convert", "Parameters": ["x=" + "y" * 900]}]
    silver = {"ProjectName": FLEET, "Selector": {"TagSelector": "tier=silver"}, "Actions": big}
    result = invoke.direct([selector_doc(), silver])
    statuses = {r["batch_id"]: r["status"] for r in result["results"]}
    assert {statuses[i] for i in small_ids} == {"queued"} and {statuses[i] for i in big_ids} == {"rejected"}
    assert sorted(d["Id"] for m in sent_documents(emu) for d in m) == sorted(small_ids)


def test_a_per_message_refusal_splits_only_the_refused_message(invoke, emu, work_queue):
    """MNS may answer a BatchSendMessage per message (the SDK's `sub_errors`): the accepted message is not sent
    again, the refused one is halved and sent again."""
    ids = emu.imm.create_batches(FLEET, 60, state="Ready", tags={"tier": "gold"})  # two messages: 50 and 10
    answer = (
        '<?xml version="1.0" encoding="UTF-8"?><Messages xmlns="http://mns.aliyuncs.com/doc/v1/">'
        "<Message><ErrorCode>InvalidArgument</ErrorCode><ErrorMessage>The length of message should not be larger "
        "than MaximumMessageSize.</ErrorMessage></Message>"
        "<Message><MessageId>5F290C926D472878-2-14D9529A8FA-200000001</MessageId>"
        "<MessageBodyMD5>C5DD56A39F5F7BB8B3337C6D11B6D8C7</MessageBodyMD5></Message></Messages>"
    )
    emu.faults.inject(
        "BatchSendMessage", "answer", count=1, service="mns", status=400, body=answer.encode(),
        content_type="text/xml;charset=utf-8", extra_headers={"x-mns-request-id": "5F290C926D472878"},
    )  # fmt: skip
    result = invoke.direct(selector_doc())
    assert [r["batch_id"] for r in result["results"]] == ids
    assert {r["status"] for r in result["results"]} == {"queued"}
    calls = emu.calls(action="BatchSendMessage")
    assert len(calls) == 2
    stored = [json.loads(base64.b64decode(m["body"])) for m in emu.mns.queue_messages(work_queue)]
    assert [len(m) for m in stored] == [25, 25]  # the first 50, halved; the 10 MNS took are not sent twice
    assert [d["Id"] for m in stored for d in m] == ids[:50]


def _handler():
    import handler

    return handler.handler


def test_splitting_stops_at_the_deadline_and_leaves_the_rest_for_the_platform(invoke, emu, small_queue, sts):
    """Each split is another request: when the invocation's time runs out, the documents not yet sent are `failed`
    (not final, every one with its result), so the platform delivers the selection again, and that delivery
    finishes the work."""
    from tests.conftest import fc_context

    ids = emu.imm.create_batches(FLEET, 60, state="Ready", tags={"tier": "gold"})
    emu.faults.inject("BatchSendMessage", "latency", count=None, service="mns", seconds=0.4)
    status, body, _ = invoke.post(selector_doc(), context=fc_context(sts, timeout=2))
    results = body["results"]
    assert status in (207, 502) and [r["batch_id"] for r in results] == ids  # every document has its result
    stored = {d["Id"] for m in sent_documents(emu) for d in m}
    assert {r["batch_id"] for r in results if r["status"] == "queued"} == stored
    failed = [r for r in results if r["status"] != "queued"]
    assert failed and {(r["status"], r["error"]["code"]) for r in failed} == {("failed", "DeadlineExceeded")}
    emu.faults.clear()
    status, body, _ = invoke.post(selector_doc())  # the platform's redelivery
    assert status == 202 and {d["Id"] for m in sent_documents(emu) for d in m} == set(ids)


def test_when_one_document_fills_a_message_the_messages_still_share_requests(invoke, emu, small_queue):
    """Documents of ~700 bytes as sent against a 1 KB queue: one per message. A request MNS refused as a whole
    does not say which message was too large, so its one-document messages are sent again together (split in two
    while refused), not one request each."""
    ids = emu.imm.create_batches(FLEET, 25, state="Ready", tags={"tier": "gold"})
    actions = [{"Name": "video/convert", "Parameters": ["x=" + "y" * 400]}]
    status, body, _ = invoke.post(selector_doc(Actions=actions))
    assert status == 202 and {r["status"] for r in body["results"]} == {"queued"}
    messages = sent_documents(emu)
    assert [len(m) for m in messages] == [1] * 25 and sorted(m[0]["Id"] for m in messages) == sorted(ids)
    assert len(emu.calls(action="BatchSendMessage")) <= 10
