"""The MNS part of the emulator, driven by the real aliyun-mns-sdk client over HTTP."""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import json
import threading
import time
import warnings
import xml.etree.ElementTree as ET
from email.utils import formatdate

import pytest
from mns.account import Account
from mns.auth import Credentials
from mns.message_property import MessagePropertyValue, PropertyType
from mns.mns_client import MNSClient
from mns.mns_exception import MNSServerException
from mns.queue import Message
from mns.topic import Base64TopicMessage, DirectMailInfo, TopicMessage

from emulator import Emulator
from emulator.mns import MnsService
from emulator.server import Keyring

AK, SECRET = "mns-test-ak", "mns-test-secret"
STS_AK, STS_SECRET, STS_TOKEN = "STS.mns-test", "sts-secret", "sts-token-value"
_names = itertools.count()


@pytest.fixture(scope="module")
def mns_emu():
    emu = Emulator(seed=None, access_key_id=AK, access_key_secret=SECRET)
    emu.keyring.add(STS_AK, STS_SECRET, STS_TOKEN)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def topic_name(mns_emu) -> str:
    name = f"topic-{next(_names)}"
    mns_emu.mns.create_topic(name)
    return name


@pytest.fixture
def queue_name(mns_emu) -> str:
    name = f"queue-{next(_names)}"
    mns_emu.mns.create_queue(name)
    return name


def account(emu: Emulator, ak: str = AK, secret: str = SECRET, token: str = "") -> Account:
    # The endpoint needs its scheme; the token must be "" (not None) for a permanent key.
    return Account(emu.url, ak, secret, token)


def last_status(emu: Emulator) -> int:
    return emu.calls(service="mns")[-1].status


def raw_request(emu: Emulator, method: str, uri: str, body: bytes = b"", date: str | None = None, **extra: str):
    """A request signed by the SDK's own signer (MNSClient.get_signature), with headers the SDK would not send."""
    headers = {"x-mns-version": "2015-06-06", "host": emu.endpoint, "date": date or formatdate(usegmt=True)}
    if body:
        headers["content-type"] = "text/xml;charset=UTF-8"
        headers["content-md5"] = base64.b64encode(
            hashlib.md5(body, usedforsecurity=False).hexdigest().encode()
        ).decode()
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    client = MNSClient(emu.url, AK, SECRET)
    headers["Authorization"] = client.get_signature(method, headers, uri, Credentials(AK, SECRET, ""))
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
    try:
        conn.request(method, uri, body, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def parse_error(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)  # noqa: S314 - our own emulator's answer
    assert root.tag == "{http://mns.aliyuncs.com/doc/v1/}Error"
    return {child.tag.split("}")[1]: child.text or "" for child in root}


# -- topics --------------------------------------------------------------------------------------------------------
def test_publish_raw_message_with_tag_and_properties(mns_emu, topic_name):
    body = json.dumps({"status": "updated", "batch_id": "b-1", "note": '中文 <&> "q"'}, ensure_ascii=False)
    msg = TopicMessage(body, message_tag="update-batch")
    msg.add_user_property("source", MessagePropertyValue(PropertyType.STRING, "oss"))
    msg.add_user_property("count", MessagePropertyValue(PropertyType.NUMBER, 3))
    msg.add_user_property("ok", MessagePropertyValue(PropertyType.BOOLEAN, True))
    resp = account(mns_emu).get_topic(topic_name).publish_message(msg)

    [stored] = mns_emu.mns.published(topic_name)
    assert stored["message_id"] == resp.message_id
    assert stored["body"] == body  # exactly as sent (XML escaping undone)
    assert stored["decoded"] is None  # raw JSON is not base64
    assert stored["tag"] == "update-batch"
    assert stored["properties"] == {"source": "oss", "count": "3", "ok": "true"}
    assert stored["property_types"] == {"source": "STRING", "count": "NUMBER", "ok": "BOOLEAN"}
    assert (
        stored["md5"] == resp.message_body_md5 == hashlib.md5(body.encode(), usedforsecurity=False).hexdigest().upper()
    )
    assert time.time() - stored["at"] < 10
    assert mns_emu.calls(service="mns")[-1].action == "PublishMessage"


def test_publish_base64_message(mns_emu, topic_name):
    document = '{"ProjectName":"demo-project","Id":"batch-demo-ready","Tags":{"k":"é"}}'
    account(mns_emu).get_topic(topic_name).publish_message(Base64TopicMessage(document))
    [stored] = mns_emu.mns.published(topic_name)
    assert stored["body"] == base64.b64encode(document.encode()).decode()
    assert stored["decoded"] == document
    assert stored["tag"] is None  # no MessageTag element when the tag is empty


def test_publish_message_attributes(mns_emu, topic_name):
    mail = DirectMailInfo("noreply@example.com", "batch updated", 0, 0, 0)
    account(mns_emu).get_topic(topic_name).publish_message(TopicMessage("hello", direct_mail=mail))
    [stored] = mns_emu.mns.published(topic_name)
    assert json.loads(stored["attributes"]["DirectMail"])["Subject"] == "batch updated"


def test_topic_attributes_and_wait_for_published(mns_emu, topic_name):
    topic = account(mns_emu).get_topic(topic_name)
    threading.Timer(0.2, lambda: topic.publish_message(TopicMessage("late"))).start()
    messages = mns_emu.mns.wait_for_published(topic_name, count=1, timeout=5)
    assert [m["body"] for m in messages] == ["late"]
    attributes = account(mns_emu).get_topic(topic_name).get_attributes()
    assert attributes.message_count == 1 and attributes.topic_name == topic_name


def test_message_size_limit(mns_emu, topic_name):
    topic = account(mns_emu).get_topic(topic_name)
    topic.publish_message(TopicMessage("x" * 65536))  # exactly 64 KB is allowed
    with pytest.raises(MNSServerException) as err:
        topic.publish_message(TopicMessage("x" * 65537))
    assert err.value.type == "InvalidArgument" and last_status(mns_emu) == 400
    assert len(mns_emu.mns.published(topic_name)) == 1


# What MNS answers for a body over the topic's or queue's MaximumMessageSize: 400 InvalidArgument, "The length of
# message should not be larger than MaximumMessageSize." (README "The emulator" has the sources).
TOO_LONG = "The length of message should not be larger than MaximumMessageSize."


def test_a_topic_created_with_a_smaller_maximum_message_size_refuses_larger_bodies(mns_emu):
    name = "small-topic-1k"
    mns_emu.mns.create_topic(name, maximum_message_size=1024)
    topic = account(mns_emu).get_topic(name)
    assert topic.get_attributes().maximum_message_size == 1024
    topic.publish_message(TopicMessage("x" * 1024))  # the limit itself is allowed
    with pytest.raises(MNSServerException) as err:
        topic.publish_message(TopicMessage("x" * 1025))
    assert (err.value.type, err.value.message, last_status(mns_emu)) == ("InvalidArgument", TOO_LONG, 400)
    status, _, reply = raw_request(
        mns_emu,
        "POST",
        f"/topics/{name}/messages",
        f'<Message xmlns="http://mns.aliyuncs.com/doc/v1/"><MessageBody>{"y" * 1025}</MessageBody></Message>'.encode(),
    )
    assert (status, parse_error(reply)["Code"], parse_error(reply)["Message"]) == (400, "InvalidArgument", TOO_LONG)
    assert [len(m["body"]) for m in mns_emu.mns.published(name)] == [1024]


@pytest.mark.parametrize("size", [1023, 65537, "64k"])
def test_maximum_message_size_is_checked_like_mns(size):
    service = MnsService(Keyring())
    with pytest.raises(ValueError, match="1024 to 65536"):
        service.create_topic("t", maximum_message_size=size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1024 to 65536"):
        service.create_queue("q", maximum_message_size=size)  # type: ignore[arg-type]


def test_a_queue_refuses_a_body_over_its_maximum_message_size_with_mns_wording(mns_emu):
    name = "small-queue-2k"
    mns_emu.mns.create_queue(name, maximum_message_size=2048)
    queue = account(mns_emu).get_queue(name)
    queue.set_encoding(False)
    with pytest.raises(MNSServerException) as err:
        queue.send_message(Message("q" * 2049))
    assert (err.value.type, err.value.message, last_status(mns_emu)) == ("InvalidArgument", TOO_LONG, 400)


# -- queues --------------------------------------------------------------------------------------------------------
def test_queue_send_receive_delete(mns_emu, queue_name):
    queue = account(mns_emu).get_queue(queue_name)
    sent = queue.send_message(Message('{"Id":"b"}'))
    [stored] = mns_emu.mns.queue_messages(queue_name)
    # The SDK base64-encodes queue messages by default; the emulator keeps the wire form and a decoded view.
    assert stored["body"] == base64.b64encode(b'{"Id":"b"}').decode()
    assert stored["decoded"] == '{"Id":"b"}'
    assert stored["md5"] == sent.message_body_md5 and stored["visible"]

    received = queue.receive_message(wait_seconds=1)
    assert received.message_body == b'{"Id":"b"}'  # the SDK decodes base64 on receive
    assert received.message_id == sent.message_id and received.dequeue_count == 1
    assert mns_emu.mns.queue_messages(queue_name)[0]["visible"] is False

    queue.delete_message(received.receipt_handle)
    assert mns_emu.mns.queue_messages(queue_name) == []
    actions = [r.action for r in mns_emu.calls(service="mns")[-3:]]
    assert actions == ["SendMessage", "ReceiveMessage", "DeleteMessage"]


def test_raw_queue_messages_and_batch_receive(mns_emu, queue_name):
    queue = account(mns_emu).get_queue(queue_name)
    queue.set_encoding(False)
    for i in range(3):
        queue.send_message(Message(f"raw-{i}", priority=16 - i))
    assert [m["body"] for m in mns_emu.mns.queue_messages(queue_name)] == ["raw-0", "raw-1", "raw-2"]
    batch = queue.batch_receive_message(10, wait_seconds=1)
    assert [m.message_body for m in batch] == ["raw-2", "raw-1", "raw-0"]  # priority 1 is served first


def test_visibility_timeout_and_stale_receipt_handle(mns_emu):
    name = f"queue-{next(_names)}"
    mns_emu.mns.create_queue(name, visibility_timeout=1)
    queue = account(mns_emu).get_queue(name)
    queue.send_message(Message("again"))
    first = queue.receive_message()
    with pytest.raises(MNSServerException) as err:
        queue.receive_message()  # invisible now, and no long polling asked
    assert err.value.type == "MessageNotExist" and last_status(mns_emu) == 404
    second = queue.receive_message(wait_seconds=3)  # becomes visible again after 1 s
    assert second.dequeue_count == 2
    with pytest.raises(MNSServerException) as err:
        queue.delete_message(first.receipt_handle)
    assert err.value.type == "ReceiptHandleError"
    queue.delete_message(second.receipt_handle)
    assert mns_emu.mns.queue_messages(name) == []


def test_long_polling_returns_when_a_message_arrives(mns_emu, queue_name):
    queue = account(mns_emu).get_queue(queue_name)
    sender = account(mns_emu).get_queue(queue_name)
    threading.Timer(0.3, lambda: sender.send_message(Message("wake"))).start()
    started = time.monotonic()
    assert queue.receive_message(wait_seconds=10).message_body == b"wake"
    assert time.monotonic() - started < 5


def test_queue_attributes(mns_emu, queue_name):
    queue = account(mns_emu).get_queue(queue_name)
    queue.send_message(Message("a"))
    queue.send_message(Message("b", delay_seconds=60))
    with warnings.catch_warnings():  # the SDK deprecates the message counters but still fills them
        warnings.simplefilter("ignore", DeprecationWarning)
        attributes = queue.get_attributes()
        counts = (attributes.active_messages, attributes.delay_messages, attributes.inactive_messages)
    assert (attributes.queue_name, attributes.visibility_timeout) == (queue_name, 30)
    assert counts == (1, 1, 0)
    assert [m["visible"] for m in mns_emu.mns.queue_messages(queue_name)] == [True, False]


# -- errors --------------------------------------------------------------------------------------------------------
def test_missing_topic_and_queue(mns_emu):
    with pytest.raises(MNSServerException) as err:
        account(mns_emu).get_topic("no-such-topic").publish_message(TopicMessage("x"))
    assert err.value.type == "TopicNotExist" and last_status(mns_emu) == 404
    assert err.value.req_id  # RequestId from the error body
    with pytest.raises(MNSServerException) as err:
        account(mns_emu).get_queue("no-such-queue").send_message(Message("x"))
    assert err.value.type == "QueueNotExist" and last_status(mns_emu) == 404


def test_unknown_key_and_wrong_secret(mns_emu, topic_name):
    with pytest.raises(MNSServerException) as err:
        account(mns_emu, ak="nobody").get_topic(topic_name).publish_message(TopicMessage("x"))
    assert err.value.type == "InvalidAccessKeyId" and last_status(mns_emu) == 403
    with pytest.raises(MNSServerException) as err:
        account(mns_emu, secret="wrong").get_topic(topic_name).publish_message(TopicMessage("x"))
    assert err.value.type == "SignatureDoesNotMatch" and last_status(mns_emu) == 403
    assert mns_emu.mns.published(topic_name) == []


def test_sts_key_needs_its_token(mns_emu, topic_name):
    for token in ("", "another-token"):
        with pytest.raises(MNSServerException) as err:
            account(mns_emu, STS_AK, STS_SECRET, token).get_topic(topic_name).publish_message(TopicMessage("x"))
        assert err.value.type == "InvalidSecurityToken" and last_status(mns_emu) == 403
    account(mns_emu, STS_AK, STS_SECRET, STS_TOKEN).get_topic(topic_name).publish_message(TopicMessage("ok"))
    assert [m["body"] for m in mns_emu.mns.published(topic_name)] == ["ok"]
    assert mns_emu.calls(service="mns")[-1].access_key_id == STS_AK


def test_an_expired_sts_key_is_refused(mns_emu, topic_name):
    mns_emu.keyring.add("STS.mns-expiring", "exp-secret", "exp-token")
    topic = account(mns_emu, "STS.mns-expiring", "exp-secret", "exp-token").get_topic(topic_name)
    topic.publish_message(TopicMessage("before"))
    mns_emu.keyring.expire("STS.mns-expiring")
    with pytest.raises(MNSServerException) as err:
        topic.publish_message(TopicMessage("after"))
    assert err.value.type == "SecurityTokenExpired" and last_status(mns_emu) == 403
    assert [m["body"] for m in mns_emu.mns.published(topic_name)] == ["before"]
    mns_emu.keyring.remove("STS.mns-expiring")


def test_denied_topic(mns_emu, topic_name):
    mns_emu.mns.deny(topic_name)
    with pytest.raises(MNSServerException) as err:
        account(mns_emu).get_topic(topic_name).publish_message(TopicMessage("x"))
    assert err.value.type == "AccessDenied" and last_status(mns_emu) == 403
    mns_emu.mns.allow(topic_name)
    account(mns_emu).get_topic(topic_name).publish_message(TopicMessage("x"))
    assert len(mns_emu.mns.published(topic_name)) == 1


def test_error_document_shape(mns_emu):
    status, headers, body = raw_request(mns_emu, "GET", "/topics/missing-topic")
    details = parse_error(body)
    assert status == 404 and details["Code"] == "TopicNotExist"
    assert details["RequestId"] == headers["x-mns-request-id"]
    assert details["HostId"] and details["Message"]


def test_header_checks(mns_emu, topic_name):
    body = b'<?xml version="1.0" encoding="UTF-8"?><Message><MessageBody>hi</MessageBody></Message>'
    uri = f"/topics/{topic_name}/messages"
    status, _, reply = raw_request(mns_emu, "POST", uri, body, date="Mon, 01 Jan 2024 00:00:00 GMT")
    assert (status, parse_error(reply)["Code"]) == (408, "TimeExpired")
    status, _, reply = raw_request(mns_emu, "POST", uri, body, content_md5="AAAA")
    assert (status, parse_error(reply)["Code"]) == (400, "InvalidDegist")
    status, _, reply = raw_request(mns_emu, "POST", uri, b"<Message><MessageBody>")
    assert (status, parse_error(reply)["Code"]) == (400, "MalformedXML")
    status, _, reply = raw_request(mns_emu, "POST", uri, body)  # the same request, properly formed, succeeds
    assert status == 201 and mns_emu.mns.published(topic_name)[0]["body"] == "hi"

    conn = http.client.HTTPConnection(mns_emu.host, mns_emu.port, timeout=10)
    conn.request("POST", uri, body, {"x-mns-version": "2015-06-06", "date": formatdate(usegmt=True)})
    resp = conn.getresponse()
    assert (resp.status, parse_error(resp.read())["Code"]) == (400, "MissingAuthorizationHeader")
    conn.close()


def test_injected_fault_uses_the_mns_error_format(mns_emu, topic_name):
    mns_emu.faults.inject("PublishMessage", "unavailable", service="mns")
    topic = account(mns_emu).get_topic(topic_name)
    with pytest.raises(MNSServerException) as err:
        topic.publish_message(TopicMessage("x"))
    assert err.value.type == "ServiceUnavailable" and last_status(mns_emu) == 503
    topic.publish_message(TopicMessage("x"))  # the fault was for one call only
    assert len(mns_emu.mns.published(topic_name)) == 1


# -- in-process API, seed, concurrency -----------------------------------------------------------------------------
def test_seed_format():
    service = MnsService(Keyring())
    service.load(None)
    assert service.topics() == [] and service.queues() == []
    service.load({"topics": ["imm-batch-updater-results"], "queues": {"updates": {"visibility_timeout": 5}}})
    service.load({"queues": ["plain"], "topics": {"small": {"maximum_message_size": 2048}}})
    assert service.topics() == ["imm-batch-updater-results", "small"]
    assert service.queues() == ["plain", "updates"]
    assert service.published("imm-batch-updater-results") == [] and service.queue_messages("updates") == []


def test_concurrent_publishers(mns_emu, topic_name, queue_name):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            acct = account(mns_emu)  # one Account per thread: MNSHttp keeps a single connection
            for i in range(5):
                acct.get_topic(topic_name).publish_message(TopicMessage(f"{n}-{i}"))
                acct.get_queue(queue_name).send_message(Message(f"{n}-{i}"))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    published = mns_emu.mns.published(topic_name)
    assert len(published) == 120 and len({m["message_id"] for m in published}) == 120
    assert sorted(m["body"] for m in published) == sorted(f"{n}-{i}" for n in range(24) for i in range(5))
    assert len(mns_emu.mns.queue_messages(queue_name)) == 120
