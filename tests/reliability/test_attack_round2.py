"""Findings of the second adversarial review (delivery, sinks, fan-out, retries): each test failed on the code as
it was reviewed."""

from __future__ import annotations

import base64
import json

import pytest

from devtools.pump import Key, Pump
from imm_batch_updater.outcome import Outcome, Status
from imm_batch_updater.sinks.base import Invocation, is_dead_letter, result_of, select
from tests.conftest import PROJECT, READY, new_secret
from tests.fleet.selections import ACTIONS, FLEET, QUEUE, selector_doc


def _pump(emu, sts):
    import handler

    return Pump(emu.url, QUEUE, Key(sts.access_key_id, sts.access_key_secret, sts.security_token), handler.handler)


# -- 1. `queued` is a success handed on, not a dead letter ----------------------------------------------------------
def test_queued_is_not_a_dead_letter_nor_a_failure():
    """RESULT_SINK_FILTER=dead_letters is "final failures only"; a fanned-out batch's `queued` is not a failure
    (it logs at INFO). A 5,000-batch fan-out must not page the operators with 5,000 dead letters."""
    queued = Outcome(Status.QUEUED, "p", "b", queue="q")
    assert not is_dead_letter(queued)
    assert select([queued], "dead_letters") == []
    assert select([queued], "failures") == []
    assert result_of(queued, Invocation("r", "f", "direct"))["dead_letter"] is False


# -- 2. a sink whose configuration cannot even be parsed must not make the handler raise -----------------------------
def test_a_malformed_result_webhook_url_never_makes_the_handler_raise(invoke, fn_env, emu):
    """RESULT_WEBHOOK_URL that urlsplit refuses (`http://[::1/hook`): the handler raised ValueError after applying
    the update: an event trigger's final outcome became a platform retry (a loop, every invocation), and an HTTP
    request got FC's error instead of its answer."""
    fn_env.setenv("RESULT_WEBHOOK_URL", "http://[::1/hook")
    fn_env.setenv("RESULT_WEBHOOK_SECRET", new_secret())
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}})
    assert [r["status"] for r in result["results"]] == ["updated"]
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "w"}})
    assert status == 200 and body["results"][0]["status"] == "updated"


# -- 3. work messages must fit what the queue trigger (the same function) accepts ------------------------------------
def test_work_messages_respect_max_documents(invoke, emu, work_queue, fn_env, sts):
    """With MAX_DOCUMENTS=10 the fan-out still packed 50 documents per message; the queue trigger (this function,
    same settings) answered each message `invalid` TooManyDocuments (final): 30 batches reported `queued` were
    never updated."""
    fn_env.setenv("MAX_DOCUMENTS", "10")
    ids = emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    result = invoke.direct(selector_doc(MaxBatches=100))
    assert {r["status"] for r in result["results"]} == {"queued"}
    sent = [json.loads(base64.b64decode(m["body"])) for m in emu.mns.queue_messages(QUEUE)]
    assert max(len(b) for b in sent) <= 10
    pump = _pump(emu, sts)
    pump.drain()
    assert pump.failed_deliveries == 0
    for batch_id in ids:
        assert emu.imm.get_batch(FLEET, batch_id)["Actions"] == ACTIONS, batch_id


def test_work_messages_respect_max_body_bytes(invoke, emu, work_queue, fn_env, sts):
    """With MAX_BODY_BYTES=16384 a work message may be up to 47,000 bytes of JSON (~63 KB as the queue delivers
    it, base64): the queue trigger refused it `invalid` TooLarge (final), and its batches were never updated."""
    fn_env.setenv("MAX_BODY_BYTES", "16384")
    ids = emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    params = ["p=" + "x" * 1500]
    actions = [{"Name": "video/convert", "Parameters": params}]
    result = invoke.direct(selector_doc(Actions=actions))
    assert {r["status"] for r in result["results"]} == {"queued"}
    pump = _pump(emu, sts)
    pump.drain()
    assert pump.failed_deliveries == 0
    for batch_id in ids:
        assert emu.imm.get_batch(FLEET, batch_id)["Actions"] == actions, batch_id


# -- 4. an expired STS token: every call refused with the old keys is retried with the new ones -----------------------
def test_expired_token_concurrent_documents_all_retry_with_the_refreshed_keys(invoke, emu, fn_env, monkeypatch):
    """Several documents of one delivery run in parallel; IMM answers each InvalidSecurityToken.Expired. Only the
    thread that fetched the credentials again retried; the others, refused with the same old keys, gave up at
    once (`failed`, no retry), although fresh keys were already there (contract: fetch again and retry once)."""
    import imm_batch_updater.credentials as creds
    from tests.conftest import StsKey, fc_context

    stale, fresh = StsKey(), StsKey()
    for k in (stale, fresh):
        emu.keyring.add(k.access_key_id, k.access_key_secret, k.security_token)
    emu.keyring.expire(stale.access_key_id)
    ids = emu.imm.create_batches(FLEET, 6, state="Ready", tags={"tier": "gold"})
    calls = []

    def resolve(context):
        calls.append(1)
        key = stale if len(calls) == 1 else fresh
        return creds.Credentials(key.access_key_id, key.access_key_secret, key.security_token)

    monkeypatch.setattr(creds, "resolve", resolve)
    emu.faults.inject("GetBatch", "latency", count=6, seconds=0.3)  # all six in flight with the old keys at once
    docs = [{"ProjectName": FLEET, "Id": i, "Tags": {"k": "v"}} for i in ids]
    result = invoke.direct(docs, context=fc_context(stale))
    assert [r["status"] for r in result["results"]] == ["updated"] * 6, result


def test_expired_token_and_no_credentials_to_fetch_is_failed_not_a_final_internal_error(invoke, emu, monkeypatch):
    """Fetching the credentials again raised CredentialsUnavailable out of the IMM call: the document ended
    `rejected` InternalError (final, never retried) instead of `failed` (the platform redelivers)."""
    import imm_batch_updater.credentials as creds
    from imm_batch_updater.app import DeliveryIncomplete
    from tests.conftest import StsKey, fc_context

    stale = StsKey()
    emu.keyring.add(stale.access_key_id, stale.access_key_secret, stale.security_token)
    emu.keyring.expire(stale.access_key_id)
    calls = []

    def resolve(context):
        calls.append(1)
        if len(calls) > 1:
            raise creds.CredentialsUnavailable("no credentials")
        return creds.Credentials(stale.access_key_id, stale.access_key_secret, stale.security_token)

    monkeypatch.setattr(creds, "resolve", resolve)
    with pytest.raises(DeliveryIncomplete):
        invoke.direct({"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}}, context=fc_context(stale))


# -- 5. a partially failed BatchSendMessage ---------------------------------------------------------------------------
PARTIAL = (
    b'<?xml version="1.0" encoding="UTF-8"?><Messages xmlns="http://mns.aliyuncs.com/doc/v1/">'
    b"<Message><MessageId>5F7D3C1A2B</MessageId><MessageBodyMD5>D41D8CD98F00B204E9800998ECF8427E</MessageBodyMD5>"
    b"</Message><Message><ErrorCode>InternalError</ErrorCode><ErrorMessage>retry later</ErrorMessage></Message>"
    b"</Messages>"
)


def test_a_partially_failed_batch_send_reports_the_accepted_messages_queued(invoke, emu, work_queue):
    """MNS accepted the first message of a BatchSendMessage (50 batches) and refused the second (10 batches).
    Every one of the 60 was reported `failed`, and each retry sent the accepted message again (a duplicate of 50
    work documents per attempt). The accepted batches are `queued`, only the refused ones `failed`, and a retry
    sends only what MNS refused."""
    ids = emu.imm.create_batches(FLEET, 60, state="Ready", tags={"tier": "gold"})
    emu.faults.inject(
        "BatchSendMessage",
        "answer",
        count=None,
        service="mns",
        status=500,
        body=PARTIAL,
        content_type="text/xml",
        extra_headers={"x-mns-request-id": "5F7D3C1A2B00"},
    )
    status, body, _ = invoke.post(selector_doc())
    statuses = [r["status"] for r in body["results"]]
    assert [r["batch_id"] for r in body["results"]] == ids
    assert statuses == ["queued"] * 50 + ["failed"] * 10, statuses
    assert status == 207
    sent = [c for c in emu.calls(action="BatchSendMessage")]
    assert len(sent) >= 2
    assert all(c.body.count(b"<Message>") == 1 for c in sent[1:])  # retries carry only the refused message


# -- 6. a WORK_QUEUE_ENDPOINT the MNS SDK cannot use ------------------------------------------------------------------
def test_a_malformed_work_queue_endpoint_fails_the_selection_only(invoke, emu, work_queue, fn_env):
    """WORK_QUEUE_ENDPOINT=`host:abc` (a typo): the MNS SDK raised InvalidURL out of the fan-out, and the whole
    delivery became ONE `rejected` InternalError result (final, never retried): the other document of the
    delivery was never applied and had no result of its own; the 30 batches had none either."""
    from imm_batch_updater.app import DeliveryIncomplete

    fn_env.setenv("WORK_QUEUE_ENDPOINT", "mns.example.com:abc")
    emu.imm.create_batches(FLEET, 30, state="Ready", tags={"tier": "gold"})
    docs = [selector_doc(), {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}}]
    with pytest.raises(DeliveryIncomplete):  # the selection could not be queued: the platform retries
        invoke.direct(docs)
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"k": "v"}
    status, body, _ = invoke.post(docs)
    results = body["results"]
    assert len(results) == 31 and status == 207
    assert {r["status"] for r in results[:30]} == {"failed"} and results[30]["status"] == "updated"
