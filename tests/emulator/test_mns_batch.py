"""MNS queues for the fleet work queue (issue #13): BatchSendMessage, BatchReceiveMessage, BatchDeleteMessage.

Driven by the real aliyun-mns-sdk (`mns` package) over HTTP: the limits MNS documents (16 messages, 64 KB in all,
the queue's MaximumMessageSize), signatures and STS tokens, and a local pump reading the queue back.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message
from test_mns import AK as RAW_AK
from test_mns import SECRET as RAW_SECRET
from test_mns import parse_error, raw_request  # the SDK's own signer, for bodies the SDK would not build

from emulator import Emulator

AK, SECRET = "mns-batch-ak", "mns-batch-secret"
STS_AK, STS_SECRET, STS_TOKEN = "STS.mns-batch", "sts-batch-secret", "sts-batch-token"
_names = itertools.count()


@pytest.fixture(scope="module")
def mns_emu():
    emu = Emulator(seed=None, access_key_id=AK, access_key_secret=SECRET)
    emu.keyring.add(STS_AK, STS_SECRET, STS_TOKEN)
    emu.keyring.add(RAW_AK, RAW_SECRET)  # raw_request signs with test_mns's key
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def queue_name(mns_emu) -> str:
    name = f"work-{next(_names)}"
    mns_emu.mns.create_queue(name)
    return name


def queue(emu: Emulator, name: str, ak: str = AK, secret: str = SECRET, token: str = ""):
    return Account(emu.url, ak, secret, token).get_queue(name)


def documents(n: int, start: int = 0) -> list[str]:
    return [
        json.dumps([{"ProjectName": "p", "Id": f"batch-{i:04d}", "Tags": {"tier": "gold"}}])
        for i in range(start, start + n)
    ]


def last_call(emu: Emulator):
    return emu.calls(service="mns")[-1]


# -- BatchSendMessage -------------------------------------------------------------------------------------------


def test_batch_send_sixteen_base64_messages(mns_emu, queue_name):
    bodies = documents(16)
    sent = queue(mns_emu, queue_name).batch_send_message([Message(b) for b in bodies])
    stored = mns_emu.mns.queue_messages(queue_name)
    assert [m["decoded"] for m in stored] == bodies  # the SDK base64-encodes by default
    assert [m["message_id"] for m in stored] == [s.message_id for s in sent]
    assert [m["md5"] for m in stored] == [s.message_body_md5 for s in sent]
    assert all(m["md5"] == hashlib.md5(m["body"].encode(), usedforsecurity=False).hexdigest().upper() for m in stored)
    assert len({m["message_id"] for m in stored}) == 16
    call = last_call(mns_emu)
    assert (call.action, call.status, call.access_key_id, call.signing) == ("BatchSendMessage", 201, AK, "MNS")


def test_batch_send_raw_with_delay_and_priority(mns_emu, queue_name):
    q = queue(mns_emu, queue_name)
    q.set_encoding(False)
    q.batch_send_message(
        [Message("now", priority=16), Message("later", delay_seconds=60), Message("first", priority=1)]
    )
    stored = mns_emu.mns.queue_messages(queue_name)
    assert [(m["body"], m["priority"], m["visible"]) for m in stored] == [
        ("now", 16, True),
        ("later", 8, False),
        ("first", 1, True),
    ]
    assert [m.message_body for m in q.batch_receive_message(16)] == ["first", "now"]


def test_seventeen_messages_are_refused_whole(mns_emu, queue_name):
    with pytest.raises(MNSServerException) as err:
        queue(mns_emu, queue_name).batch_send_message([Message(b) for b in documents(17)])
    assert err.value.type == "InvalidArgument" and "16" in err.value.message
    assert last_call(mns_emu).status == 400
    assert mns_emu.mns.queue_messages(queue_name) == []


def test_total_size_limit_is_64_kb_of_bodies_as_sent(mns_emu, queue_name):
    q = queue(mns_emu, queue_name)
    q.set_encoding(False)
    q.batch_send_message([Message("x" * 4096) for _ in range(16)])  # exactly 65536 bytes: allowed
    with pytest.raises(MNSServerException) as err:
        q.batch_send_message([Message("x" * 4096) for _ in range(15)] + [Message("x" * 4097)])
    assert err.value.type == "InvalidArgument" and last_call(mns_emu).status == 400
    assert len(mns_emu.mns.queue_messages(queue_name)) == 16

    encoded = queue(mns_emu, queue_name)  # base64 makes 3 bytes 4: two 24,576-byte texts are 65,536 bytes sent
    encoded.batch_send_message([Message("y" * 24576), Message("y" * 24576)])
    with pytest.raises(MNSServerException):
        encoded.batch_send_message([Message("y" * 24576), Message("y" * 24577)])
    assert len(mns_emu.mns.queue_messages(queue_name)) == 18


def test_a_message_over_the_queues_maximum_size_fails_the_whole_batch(mns_emu):
    name = f"small-{next(_names)}"
    mns_emu.mns.create_queue(name, maximum_message_size=1024)
    q = queue(mns_emu, name)
    q.set_encoding(False)
    with pytest.raises(MNSServerException) as err:
        q.batch_send_message([Message("ok"), Message("z" * 1025)])
    assert err.value.type == "InvalidArgument"
    with pytest.raises(MNSServerException):
        q.send_message(Message("z" * 1025))
    q.send_message(Message("z" * 1024))
    assert [m["body"] for m in mns_emu.mns.queue_messages(name)] == ["z" * 1024]


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        (b"<Messages", "MalformedXML"),
        (b'<Messages xmlns="http://mns.aliyuncs.com/doc/v1/"></Messages>', "InvalidArgument"),
        (
            b'<Messages xmlns="http://mns.aliyuncs.com/doc/v1/"><Message><Priority>3</Priority></Message></Messages>',
            "InvalidArgument",
        ),
        (
            b'<Messages xmlns="http://mns.aliyuncs.com/doc/v1/"><Message><MessageBody>a</MessageBody>'
            b"<DelaySeconds>604801</DelaySeconds></Message></Messages>",
            "InvalidArgument",
        ),
    ],
)
def test_malformed_batches(mns_emu, queue_name, xml, code):
    status, _, reply = raw_request(mns_emu, "POST", f"/queues/{queue_name}/messages", xml)
    assert (status, parse_error(reply)["Code"]) == (400, code)
    assert mns_emu.mns.queue_messages(queue_name) == []


# -- signatures and STS tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["send", "batch"])
def test_sts_keys_are_checked_on_both_sends(mns_emu, queue_name, operation):
    def send(q) -> None:
        if operation == "send":
            q.send_message(Message("doc"))
        else:
            q.batch_send_message([Message("doc"), Message("doc")])

    for token in ("", "forged-token"):
        with pytest.raises(MNSServerException) as err:
            send(queue(mns_emu, queue_name, STS_AK, STS_SECRET, token))
        assert err.value.type == "InvalidSecurityToken" and last_call(mns_emu).status == 403
    with pytest.raises(MNSServerException) as err:
        send(queue(mns_emu, queue_name, STS_AK, "not-the-secret", STS_TOKEN))
    assert err.value.type == "SignatureDoesNotMatch"
    assert mns_emu.mns.queue_messages(queue_name) == []

    send(queue(mns_emu, queue_name, STS_AK, STS_SECRET, STS_TOKEN))
    assert last_call(mns_emu).access_key_id == STS_AK and last_call(mns_emu).status == 201
    sent = len(mns_emu.mns.queue_messages(queue_name))

    mns_emu.keyring.add("STS.rotating", "rot-secret", "rot-token")
    rotating = queue(mns_emu, queue_name, "STS.rotating", "rot-secret", "rot-token")
    send(rotating)
    mns_emu.keyring.expire("STS.rotating")
    with pytest.raises(MNSServerException) as err:
        send(rotating)
    assert err.value.type == "SecurityTokenExpired" and last_call(mns_emu).status == 403
    assert len(mns_emu.mns.queue_messages(queue_name)) == 2 * sent
    mns_emu.keyring.remove("STS.rotating")


def test_unknown_queue(mns_emu):
    with pytest.raises(MNSServerException) as err:
        queue(mns_emu, "no-such-work-queue").batch_send_message([Message("x")])
    assert err.value.type == "QueueNotExist" and last_call(mns_emu).status == 404


# -- reading the queue back: the local pump -------------------------------------------------------------------


def pump(q, wait_seconds: int = 1) -> list[str]:
    """What `dev.py pump` does: batch-receive up to 16, batch-delete them, until the queue is empty."""
    bodies: list[str] = []
    while True:
        try:
            batch = q.batch_receive_message(16, wait_seconds=wait_seconds)
        except MNSServerException as exc:
            if exc.type == "MessageNotExist":
                return bodies
            raise
        bodies += [m.message_body.decode() for m in batch]
        q.batch_delete_message([m.receipt_handle for m in batch])


def test_pump_reads_every_message_once_and_empties_the_queue(mns_emu, queue_name):
    sender = queue(mns_emu, queue_name, STS_AK, STS_SECRET, STS_TOKEN)
    sent = documents(40)
    for start in range(0, 40, 16):
        sender.batch_send_message([Message(b) for b in sent[start : start + 16]])
    received = pump(queue(mns_emu, queue_name))
    assert sorted(received) == sorted(sent) and len(received) == 40
    assert mns_emu.mns.queue_messages(queue_name) == []
    actions = [c.action for c in mns_emu.calls(service="mns") if c.action.startswith("Batch")]
    assert actions.count("BatchDeleteMessage") == 3 and actions.count("BatchSendMessage") >= 3


def test_batch_delete_with_a_stale_handle_deletes_the_rest_and_reports_it(mns_emu, queue_name):
    q = queue(mns_emu, queue_name)
    q.batch_send_message([Message(b) for b in documents(3)])
    handles = [m.receipt_handle for m in q.batch_receive_message(16)]
    with pytest.raises(MNSServerException) as err:
        q.batch_delete_message([*handles, "1-0000STALE"])
    assert err.value.type == "ReceiptHandleError" and last_call(mns_emu).status == 400
    assert [e["ReceiptHandle"] for e in err.value.sub_errors] == ["1-0000STALE"]
    assert mns_emu.mns.queue_messages(queue_name) == []
    q.batch_send_message([Message("again")])
    [message] = q.batch_receive_message(16)
    q.batch_delete_message([message.receipt_handle])  # 204
    assert last_call(mns_emu).status == 204


def test_batch_delete_of_seventeen_handles_is_refused(mns_emu, queue_name):
    q = queue(mns_emu, queue_name)
    q.batch_send_message([Message(b) for b in documents(16)])
    handles = [m.receipt_handle for m in q.batch_receive_message(16)]
    with pytest.raises(MNSServerException) as err:
        q.batch_delete_message([*handles, handles[0]])
    assert err.value.type == "InvalidArgument"
    assert len(mns_emu.mns.queue_messages(queue_name)) == 16  # nothing deleted


def test_batch_receive_bounds(mns_emu, queue_name):
    q = queue(mns_emu, queue_name)
    q.batch_send_message([Message("a")])
    with pytest.raises(MNSServerException) as err:
        q.batch_receive_message(17)
    assert err.value.type == "InvalidArgument"
    assert [m.message_body for m in q.batch_receive_message(16)] == [b"a"]


# -- inspection ------------------------------------------------------------------------------------------------


def test_wait_for_queue_and_drain(mns_emu, queue_name):
    q = queue(mns_emu, queue_name)
    threading.Timer(0.2, lambda: q.batch_send_message([Message(b) for b in documents(5)])).start()
    assert len(mns_emu.mns.wait_for_queue(queue_name, 5, timeout=5)) == 5
    drained = mns_emu.mns.drain(queue_name)
    assert [json.loads(m["decoded"])[0]["Id"] for m in drained] == [f"batch-{i:04d}" for i in range(5)]
    assert base64.b64decode(drained[0]["body"]).decode() == drained[0]["decoded"]
    assert mns_emu.mns.queue_messages(queue_name) == [] and mns_emu.mns.drain(queue_name) == []
    assert mns_emu.mns.drain("no-such-queue") == []
    assert mns_emu.mns.wait_for_queue(queue_name, 1, timeout=0.1) == []


def test_concurrent_batch_senders(mns_emu, queue_name):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            q = queue(mns_emu, queue_name)  # one Account per thread: MNSHttp keeps a single connection
            for round_ in range(4):
                q.batch_send_message([Message(b) for b in documents(16, start=(n * 4 + round_) * 16)])
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    stored = mns_emu.mns.queue_messages(queue_name)
    assert len(stored) == 512 and len({m["message_id"] for m in stored}) == 512
    assert sorted(m["decoded"] for m in stored) == sorted(documents(512))
