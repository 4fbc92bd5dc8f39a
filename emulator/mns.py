"""MNS (Simple Message Queue) XML API as aliyun-mns-sdk 1.3.0 sends it: topics and queues.

Operations: PublishMessage (`POST /topics/<t>/messages`), GetTopicAttributes (`GET /topics/<t>`), SendMessage
and BatchSendMessage (`POST /queues/<q>/messages`, a `<Message>` or a `<Messages>` document), ReceiveMessage /
BatchReceiveMessage (`GET /queues/<q>/messages[?waitseconds=N][&numOfMessages=N]`, long polling honoured),
DeleteMessage (`DELETE /queues/<q>/messages?ReceiptHandle=..`), BatchDeleteMessage (`DELETE /queues/<q>/messages`
with a `<ReceiptHandles>` document) and GetQueueAttributes (`GET /queues/<q>`). Point the SDK at the emulator
with `Account("http://127.0.0.1:<port>", ak, secret, token)`: `MNSClient.process_host` wants the scheme and
keeps host:port as the Host header.

Wire facts, read in the installed SDK:
- Signature (`mns/mns_client.py`, `MNSClient.get_signature`): `Authorization: MNS <ak>:base64(hmac-sha1(secret,
  "METHOD\\nContent-MD5\\nContent-Type\\nDate\\n" + "".join(f"{k}:{v}\\n" for sorted x-mns-* headers) + uri))`,
  where `uri` is the request target exactly as sent, query string included (ReceiveMessage signs
  `/queues/q/messages?waitseconds=3`). Header names are lower-case on the SDK side.
- `Content-MD5` is base64 of the *hex* MD5 digest, not of the raw digest (`MNSClient.build_header`).
- STS: the token travels in a `security-token` header, which is *not* signed (`build_header` adds it after signing).
  The SDK sends it whenever the token is not `""`, so `Account(..., security_token=None)` sends nothing usable:
  pass `""` for permanent keys.
- Bodies are built by `mns/mns_xml_handler.py` (`TopicMessageEncoder`, `MessageEncoder`): `<Message
  xmlns="http://mns.aliyuncs.com/doc/v1/"><MessageBody>..</MessageBody><MessageTag>..</MessageTag>
  <MessageAttributes><DirectMail>..</DirectMail></MessageAttributes><UserProperties><PropertyValue><Name/><Value/>
  <Type/></PropertyValue></UserProperties></Message>`; empty fields are left out, so an empty body has no
  `MessageBody` element at all. `TopicMessage` sends the body raw, `Base64TopicMessage` base64-encodes it; a
  `Queue` base64-encodes by default (`Queue.set_encoding(False)` sends raw). The emulator stores the body exactly
  as sent and offers a decoded view.
- The SDK treats any 2xx/3xx as success and parses `<Error>` (Code, Message, RequestId, HostId all required,
  `ErrorDecoder`) for 4xx/5xx; PublishMessage/SendMessage answers need `MessageId` and `MessageBodyMD5`.
- `MNSHttp` keeps one HTTP connection per client: one `Account` is not safe to share between threads.

Error codes follow the MNS error-code table: MissingAuthorizationHeader / InvalidAuthorizationHeader /
MissingDateHeader / InvalidDateHeader / MalformedXML / InvalidArgument / InvalidDegist (sic) / ReceiptHandleError /
MissingReceiptHandle (400), InvalidAccessKeyId / SignatureDoesNotMatch / AccessDenied (403), TopicNotExist /
QueueNotExist / MessageNotExist (404), TimeExpired (408, Date more than 15 minutes off). A missing or wrong
security token answers 403 InvalidSecurityToken, an expired STS key 403 SecurityTokenExpired (the emulator's
choices, as OSS answers: the MNS table does not list STS errors).

Limits, as the MNS API reference states them (https://www.alibabacloud.com/help/en/mns/developer-reference/
batchsendmessage, .../sendmessage, .../batchdeletemessage, .../batchreceivemessage; the batch FAQ
https://alibabacloud.com/help/en/mns/support/can-i-use-mns-to-send-or-receive-multiple-messages-at-a-time):
- a message body is 1 byte up to the queue's or topic's MaximumMessageSize (1024-65536, default 65536 = 64 KB, set
  when it is created), counted on the body as sent, i.e. after the SDK's base64 (a 64 KB limit is ~47 KB of raw
  text). A body over it is refused with 400 `InvalidArgument`, message "The length of message should not be
  larger than MaximumMessageSize." (the MNS error table, https://www.alibabacloud.com/help/doc-detail/27501.html,
  lists InvalidArgument / 400 for a value out of range; the wording is what MNS sends: quoted in the MPS
  documentation's "Message sending errors", github.com/AlibabaCloudDocs/mts, `intl.en-US/API Reference/Appendix/
  Error code list.md` ("must not" there), and compared verbatim against the Python SDK's `e.message` in public
  code ("should not"), which the emulator follows);
- BatchSendMessage takes 1-16 messages whose bodies total at most 64 KB (65536 bytes);
- BatchReceiveMessage returns up to 16, BatchDeleteMessage takes 1-16 receipt handles;
- DelaySeconds 0-604800, Priority 1-16 (1 first, default 8).
A request over a limit is refused as a whole with 400 `InvalidArgument` (the MNS error table's code for a value
out of range; the wording of the count and total limits is the emulator's), and nothing of it is enqueued. (Real
MNS may instead answer a BatchSendMessage per message, `<Messages><Message><ErrorCode>..`, which the SDK's
`BatchSendMessageDecoder` reads into `sub_errors`; the function handles both, and tests the per-message form with
the `answer` fault.) BatchDeleteMessage deletes
every handle it knows and, when some are unknown, answers 400 with `<Errors><Error><ErrorCode>ReceiptHandleError
</ErrorCode><ErrorMessage/><ReceiptHandle/></Error></Errors>`, the per-handle form the SDK's
`BatchDeleteMessageDecoder` reads (only "204 when every sub-request succeeded" is documented: the status of a
partial failure is the emulator's choice).

Inspection for tests: `queue_messages` (every message still queued), `wait_for_queue` (block until N are
there), `drain` (take them all out), plus `published` / `wait_for_published` for topics.

Seed format (`load`): `{"topics": ["<name>", ...], "queues": ["<name>", ...]}`; either may also be a mapping of
name -> options (`{"visibility_timeout": 30, "delay_seconds": 0, "maximum_message_size": 65536}` for queues,
`{"maximum_message_size": 65536}` for topics; `create_topic` / `create_queue` take the same keywords).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - only for type hints of parsed local requests
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from emulator import _xml
from emulator.server import Keyring, Request, Response

XMLNS = "http://mns.aliyuncs.com/doc/v1/"
API_VERSION = "2015-06-06"
MAX_SKEW_SECONDS = 15 * 60
MAX_MESSAGE_SIZE = 65536  # bytes of MessageBody as sent: the MNS default MaximumMessageSize (64 KB)
MIN_MESSAGE_SIZE = 1024  # the smallest MaximumMessageSize a queue or topic can be created with
# MNS's answer to a body over the queue's or topic's MaximumMessageSize (400 InvalidArgument; sources in the module
# docstring).
MESSAGE_TOO_LONG = "The length of message should not be larger than MaximumMessageSize."
MAX_WAIT_SECONDS = 30  # MNS caps long polling at 30 s
MAX_BATCH_MESSAGES = 16  # BatchSendMessage / BatchReceiveMessage / BatchDeleteMessage
MAX_BATCH_BYTES = 65536  # BatchSendMessage: all message bodies together


class _MnsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Topic:
    name: str
    maximum_message_size: int = MAX_MESSAGE_SIZE
    created: float = field(default_factory=time.time)
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Queue:
    name: str
    visibility_timeout: int = 30
    delay_seconds: int = 0
    maximum_message_size: int = MAX_MESSAGE_SIZE
    created: float = field(default_factory=time.time)
    messages: list[dict[str, Any]] = field(default_factory=list)  # in enqueue order; deleted ones are removed


class MnsService:
    """Emulated MNS for one account. Thread-safe; ReceiveMessage long polling waits on a condition."""

    name = "mns"

    def __init__(self, keyring: Keyring, region: str = "cn-hangzhou") -> None:
        self.keyring = keyring
        self.region = region
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._topics: dict[str, _Topic] = {}
        self._queues: dict[str, _Queue] = {}
        self._denied: set[tuple[str, str]] = set()  # (kind, name)

    # -- seed and inspection API ---------------------------------------------------------------------------------
    def load(self, seed: dict[str, Any] | None) -> None:
        """Apply an `"mns"` seed section (format in the module docstring); None does nothing."""
        if not seed:
            return
        topics = seed.get("topics", [])
        if isinstance(topics, list):
            topics = {name: {} for name in topics}
        for name, options in topics.items():
            self.create_topic(name, **(options or {}))
        queues = seed.get("queues", [])
        if isinstance(queues, list):
            queues = {name: {} for name in queues}
        for name, options in queues.items():
            self.create_queue(name, **(options or {}))

    def create_topic(self, name: str, maximum_message_size: int = MAX_MESSAGE_SIZE) -> None:
        """A topic; `maximum_message_size` is its MaximumMessageSize (1024-65536 bytes, as MNS allows)."""
        _check_maximum_message_size(maximum_message_size)
        with self._lock:
            self._topics.setdefault(name, _Topic(name, maximum_message_size))

    def create_queue(
        self,
        name: str,
        visibility_timeout: int = 30,
        delay_seconds: int = 0,
        maximum_message_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        """A queue; `maximum_message_size` is its MaximumMessageSize (1024-65536 bytes, as MNS allows)."""
        _check_maximum_message_size(maximum_message_size)
        with self._lock:
            self._queues.setdefault(name, _Queue(name, visibility_timeout, delay_seconds, maximum_message_size))

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self._topics.pop(name, None)

    def delete_queue(self, name: str) -> None:
        with self._lock:
            self._queues.pop(name, None)

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._topics)

    def queues(self) -> list[str]:
        with self._lock:
            return sorted(self._queues)

    def published(self, topic: str) -> list[dict[str, Any]]:
        """Messages published to a topic, oldest first (copies; [] for an unknown topic).

        Each: message_id, body (str exactly as sent), decoded (base64-decoded UTF-8 text when the body is valid
        base64, else None), tag, attributes (MessageAttributes children, e.g. DirectMail), properties (user
        properties name -> value as sent; BINARY stays base64), property_types, system_properties, group_id,
        md5, at (epoch seconds), request_id.
        """
        with self._lock:
            found = self._topics.get(topic)
            return [dict(m) for m in found.messages] if found else []

    def wait_for_published(self, topic: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until `topic` holds at least `count` messages (or the timeout passes); return them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.published(topic)) < count and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self.published(topic)

    def queue_messages(self, queue: str) -> list[dict[str, Any]]:
        """Every message still in a queue (visible or not), oldest first; same keys as `published` plus priority,
        dequeue_count, enqueue_time and visible (bool)."""
        now = time.time()
        with self._lock:
            found = self._queues.get(queue)
            if not found:
                return []
            return [
                {k: v for k, v in {**m, "visible": m["visible_at"] <= now}.items() if not k.startswith("_")}
                for m in found.messages
            ]

    def wait_for_queue(self, queue: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until `queue` holds at least `count` messages (or the timeout passes); return `queue_messages`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.queue_messages(queue)) < count and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self.queue_messages(queue)

    def drain(self, queue: str) -> list[dict[str, Any]]:
        """Remove every message from `queue` (visible or not) and return them as `queue_messages` shows them."""
        with self._lock:
            taken = self.queue_messages(queue)
            found = self._queues.get(queue)
            if found is not None:
                found.messages.clear()
                self._changed.notify_all()
            return taken

    def deny(self, name: str, kind: str = "topic") -> None:
        """Answer 403 AccessDenied for every request on a topic (kind="topic") or queue (kind="queue")."""
        with self._lock:
            self._denied.add((kind, name))

    def allow(self, name: str | None = None, kind: str | None = None) -> None:
        """Lift deny rules (all of them by default)."""
        with self._lock:
            self._denied = {
                (k, n) for k, n in self._denied if not ((name is None or n == name) and (kind is None or k == kind))
            }

    # -- Service protocol ----------------------------------------------------------------------------------------
    def matches(self, request: Request) -> bool:
        return "x-mns-version" in request.headers

    def action_of(self, request: Request) -> str:
        kind, name, sub = _route(request.path)
        method, query = request.method, _query(request.query)
        if kind == "topics" and name:
            if sub == "messages":
                return "PublishMessage" if method == "POST" else "Unknown"
            if sub == "":
                return {"GET": "GetTopicAttributes", "PUT": "CreateTopic", "DELETE": "DeleteTopic"}.get(
                    method, "Unknown"
                )
        if kind == "queues" and name:
            if sub == "messages":
                if method == "POST":
                    return "BatchSendMessage" if request.body.lstrip().find(b"<Messages") >= 0 else "SendMessage"
                if method == "GET":
                    if query.get("peekonly") == "true":
                        return "PeekMessage"
                    return "BatchReceiveMessage" if "numOfMessages" in query else "ReceiveMessage"
                if method == "DELETE":
                    return "DeleteMessage" if "ReceiptHandle" in query else "BatchDeleteMessage"
                if method == "PUT":
                    return "ChangeMessageVisibility"
            if sub == "":
                return {"GET": "GetQueueAttributes", "PUT": "CreateQueue", "DELETE": "DeleteQueue"}.get(
                    method, "Unknown"
                )
        return "Unknown"

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        request_id = _request_id()
        body = _xml.document(
            "Error",
            [
                ("Code", code),
                ("Message", message),
                ("RequestId", request_id),
                ("HostId", f"http://mns.{self.region}.aliyuncs.com"),
            ],
            XMLNS,
        )
        return Response(status, {**_headers(request_id), **(headers or {})}, body)

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except _MnsError as err:
            return self.error_response(err.status, err.code, err.message)

    # -- request handling ----------------------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        self._authenticate(request)
        kind, name, _ = _route(request.path)
        action = self.action_of(request)
        handler = {
            "PublishMessage": self._publish,
            "GetTopicAttributes": self._topic_attributes,
            "SendMessage": self._send,
            "BatchSendMessage": self._batch_send,
            "ReceiveMessage": self._receive,
            "BatchReceiveMessage": self._receive,
            "DeleteMessage": self._delete,
            "BatchDeleteMessage": self._batch_delete,
            "GetQueueAttributes": self._queue_attributes,
        }.get(action)
        if handler is None:
            raise _MnsError(501, "NotImplemented", f"The emulator does not implement {action} ({request.method}).")
        with self._lock:
            exists = name in (self._topics if kind == "topics" else self._queues)
        if not exists:
            if kind == "topics":
                raise _MnsError(404, "TopicNotExist", "The topic you provided is not exist.")
            raise _MnsError(404, "QueueNotExist", "The queue name you provided is not exist.")
        with self._lock:
            denied = (kind[:-1], name) in self._denied
        if denied:
            message = "The OwnerId that your Access Key Id associated to is forbidden for this operation."
            raise _MnsError(403, "AccessDenied", message)
        return handler(request, name)

    def _publish(self, request: Request, topic: str) -> Response:
        with self._lock:
            found = self._topics.get(topic)
            limit = found.maximum_message_size if found is not None else MAX_MESSAGE_SIZE
        message = _parse_message(request.body, limit)
        request_id = _request_id()
        record = {**message, "request_id": request_id}
        with self._lock:
            found = self._topics.get(topic)
            if found is None:
                raise _MnsError(404, "TopicNotExist", "The topic you provided is not exist.")
            found.messages.append(record)
            self._changed.notify_all()
        body = _xml.document("Message", [("MessageId", record["message_id"]), ("MessageBodyMD5", record["md5"])], XMLNS)
        return Response(201, _headers(request_id), body)

    def _queue_limits(self, queue: str) -> tuple[int, int]:
        with self._lock:
            found = self._queues.get(queue)
            if found is None:
                raise _MnsError(404, "QueueNotExist", "The queue name you provided is not exist.")
            return found.maximum_message_size, found.delay_seconds

    def _queue_record(self, element: ET.Element, limit: int, default_delay: int, now: float) -> dict[str, Any]:
        message = _message_fields(element, limit)
        delay = _int_field(element, "DelaySeconds", default_delay, 0, 604800)
        priority = _int_field(element, "Priority", 8, 1, 16)
        return {
            **message,
            "priority": priority,
            "enqueue_time": int(now * 1000),
            "dequeue_count": 0,
            "first_dequeue_time": 0,
            "visible_at": now + delay,
            "_receipt_handle": None,
        }

    def _enqueue(self, queue: str, records: list[dict[str, Any]]) -> None:
        with self._lock:
            found = self._queues.get(queue)
            if found is None:
                raise _MnsError(404, "QueueNotExist", "The queue name you provided is not exist.")
            found.messages.extend(records)
            self._changed.notify_all()

    def _send(self, request: Request, queue: str) -> Response:
        limit, default_delay = self._queue_limits(queue)
        root = _parse_root(request.body, "Message")
        request_id = _request_id()
        record = {**self._queue_record(root, limit, default_delay, time.time()), "request_id": request_id}
        self._enqueue(queue, [record])
        body = _xml.document("Message", [("MessageId", record["message_id"]), ("MessageBodyMD5", record["md5"])], XMLNS)
        return Response(201, _headers(request_id), body)

    def _batch_send(self, request: Request, queue: str) -> Response:
        """All or nothing: a batch over a limit (count, a body's size, the total) enqueues none of its messages."""
        limit, default_delay = self._queue_limits(queue)
        root = _parse_root(request.body, "Messages")
        elements = _xml.children(root, "Message")
        if not 1 <= len(elements) <= MAX_BATCH_MESSAGES or len(elements) != len(root):
            raise _MnsError(
                400,
                "InvalidArgument",
                f"The count of messages in a batch request should be between 1 and {MAX_BATCH_MESSAGES}.",
            )
        now = time.time()
        request_id = _request_id()
        records = [{**self._queue_record(e, limit, default_delay, now), "request_id": request_id} for e in elements]
        total = sum(len(r["body"].encode("utf-8")) for r in records)
        if total > MAX_BATCH_BYTES:
            raise _MnsError(
                400,
                "InvalidArgument",
                f"The total size of the message bodies in a batch request should be between 1 and {MAX_BATCH_BYTES}"
                " bytes.",
            )
        self._enqueue(queue, records)
        items: list[_xml.Child] = [
            ("Message", [("MessageId", r["message_id"]), ("MessageBodyMD5", r["md5"])]) for r in records
        ]
        return Response(201, _headers(request_id), _xml.document("Messages", items, XMLNS))

    def _receive(self, request: Request, queue: str) -> Response:
        query = _query(request.query)
        batch = "numOfMessages" in query
        try:
            count = int(query.get("numOfMessages", "1"))
            wait = int(query.get("waitseconds", "0"))
        except ValueError as exc:
            raise _MnsError(400, "InvalidArgument", "numOfMessages and waitseconds must be integers.") from exc
        if not 1 <= count <= 16 or not 0 <= wait <= MAX_WAIT_SECONDS:
            raise _MnsError(400, "InvalidArgument", "numOfMessages must be 1-16 and waitseconds 0-30.")
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                found = self._queues.get(queue)
                if found is None:
                    raise _MnsError(404, "QueueNotExist", "The queue name you provided is not exist.")
                now = time.time()
                ready = sorted(
                    (m for m in found.messages if m["visible_at"] <= now),
                    key=lambda m: (m["priority"], m["enqueue_time"]),
                )[:count]
                left = deadline - time.monotonic()
                if ready or left <= 0:
                    break
                # Wake up for new messages, and in time for delayed/invisible ones becoming visible.
                next_visible = min((m["visible_at"] for m in found.messages), default=now + left)
                self._changed.wait(max(0.01, min(left, next_visible - now)))
            if not ready:
                raise _MnsError(404, "MessageNotExist", "Message not exist.")
            for m in ready:
                m["dequeue_count"] += 1
                m["first_dequeue_time"] = m["first_dequeue_time"] or int(now * 1000)
                m["visible_at"] = now + found.visibility_timeout
                m["_receipt_handle"] = f"1-{uuid.uuid4().hex.upper()}"  # hex only: sent unencoded in a query
            items = [_received_xml(m) for m in ready]
        request_id = _request_id()
        if batch:
            body = _xml.document("Messages", [("Message", item) for item in items], XMLNS)
        else:
            body = _xml.document("Message", items[0], XMLNS)
        return Response(200, _headers(request_id), body)

    def _delete(self, request: Request, queue: str) -> Response:
        # The SDK puts the handle in the query unencoded (mns_client.delete_message): decode %XX only, keep "+".
        handle = unquote(_query(request.query).get("ReceiptHandle", ""))
        if not handle:
            raise _MnsError(400, "MissingReceiptHandle", "ReceiptHandle is required.")
        with self._lock:
            found = self._queues.get(queue)
            messages = found.messages if found else []
            index = next((i for i, m in enumerate(messages) if m["_receipt_handle"] == handle), None)
            if index is None:
                raise _MnsError(400, "ReceiptHandleError", "The receipt handle you provide is not valid.")
            del messages[index]
        return Response(204, _headers(_request_id()))

    def _batch_delete(self, request: Request, queue: str) -> Response:
        root = _parse_root(request.body, "ReceiptHandles")
        handles = [(e.text or "").strip() for e in _xml.children(root, "ReceiptHandle")]
        if not 1 <= len(handles) <= MAX_BATCH_MESSAGES or len(handles) != len(root):
            raise _MnsError(
                400,
                "InvalidArgument",
                f"The count of receipt handles in a batch request should be between 1 and {MAX_BATCH_MESSAGES}.",
            )
        failed: list[str] = []
        with self._lock:
            found = self._queues.get(queue)
            messages = found.messages if found else []
            for handle in handles:
                index = next((i for i, m in enumerate(messages) if handle and m["_receipt_handle"] == handle), None)
                if index is None:
                    failed.append(handle)
                else:
                    del messages[index]
            self._changed.notify_all()
        request_id = _request_id()
        if not failed:
            return Response(204, _headers(request_id))
        errors: list[_xml.Child] = [
            (
                "Error",
                [
                    ("ErrorCode", "ReceiptHandleError"),
                    ("ErrorMessage", "The receipt handle you provide is not valid."),
                    ("ReceiptHandle", handle),
                ],
            )
            for handle in failed
        ]
        return Response(400, _headers(request_id), _xml.document("Errors", errors, XMLNS))

    def _topic_attributes(self, request: Request, topic: str) -> Response:
        with self._lock:
            found = self._topics[topic]
            fields = [
                ("TopicName", found.name),
                ("CreateTime", str(int(found.created))),
                ("LastModifyTime", str(int(found.created))),
                ("MaximumMessageSize", str(found.maximum_message_size)),
                ("MessageRetentionPeriod", "86400"),
                ("MessageCount", str(len(found.messages))),
                ("LoggingEnabled", "False"),
            ]
        return Response(200, _headers(_request_id()), _xml.document("Topic", fields, XMLNS))

    def _queue_attributes(self, request: Request, queue: str) -> Response:
        now = time.time()
        with self._lock:
            found = self._queues[queue]
            active = sum(1 for m in found.messages if m["visible_at"] <= now)
            delayed = sum(1 for m in found.messages if m["visible_at"] > now and m["dequeue_count"] == 0)
            fields = [
                ("QueueName", found.name),
                ("CreateTime", str(int(found.created))),
                ("LastModifyTime", str(int(found.created))),
                ("ActiveMessages", str(active)),
                ("InactiveMessages", str(len(found.messages) - active - delayed)),
                ("DelayMessages", str(delayed)),
                ("DelaySeconds", str(found.delay_seconds)),
                ("MaximumMessageSize", str(found.maximum_message_size)),
                ("MessageRetentionPeriod", "345600"),
                ("VisibilityTimeout", str(found.visibility_timeout)),
                ("PollingWaitSeconds", "0"),
                ("LoggingEnabled", "False"),
            ]
        return Response(200, _headers(_request_id()), _xml.document("Queue", fields, XMLNS))

    # -- authentication ------------------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> None:
        authorization = request.header("authorization")
        if not authorization:
            raise _MnsError(400, "MissingAuthorizationHeader", "Authorization header is required.")
        if not authorization.startswith("MNS ") or ":" not in authorization:
            raise _MnsError(400, "InvalidAuthorizationHeader", "The Authorization header format is invalid.")
        access_key_id, _, signature = authorization[4:].strip().rpartition(":")
        date = request.header("date")
        if not date:
            raise _MnsError(400, "MissingDateHeader", "Date header is required.")
        try:
            when = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError) as exc:
            raise _MnsError(400, "InvalidDateHeader", "The Date header format is invalid.") from exc
        if abs(time.time() - when) > MAX_SKEW_SECONDS:
            raise _MnsError(408, "TimeExpired", "The http request you sent is expired.")
        entry = self.keyring.lookup(access_key_id)
        if entry is None:
            raise _MnsError(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
        secret, token = entry
        if token is not None and not hmac.compare_digest(request.header("security-token"), token):
            raise _MnsError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        if token is not None and self.keyring.is_expired(access_key_id):
            raise _MnsError(403, "SecurityTokenExpired", "The security token you provided has expired.")
        expected = base64.b64encode(
            hmac.new(secret.encode(), _string_to_sign(request).encode("utf-8"), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, signature):
            raise _MnsError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        content_md5 = request.header("content-md5")
        if content_md5 and content_md5 != _content_md5(request.body):
            raise _MnsError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")


# -- helpers -----------------------------------------------------------------------------------------------------
def _check_maximum_message_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_MESSAGE_SIZE <= size <= MAX_MESSAGE_SIZE:
        raise ValueError(f"maximum_message_size must be an integer from {MIN_MESSAGE_SIZE} to {MAX_MESSAGE_SIZE}")


def _route(path: str) -> tuple[str, str, str]:
    """`/topics/t/messages` -> ("topics", "t", "messages"); `/queues/q` -> ("queues", "q", "")."""
    parts = path.strip("/").split("/")
    parts += [""] * (3 - len(parts))
    if len(parts) > 3:
        return "", "", ""
    return parts[0], unquote(parts[1]), parts[2]


def _query(query: str) -> dict[str, str]:
    # Not parse_qsl: it would turn "+" into a space, and MNS values (receipt handles) travel unencoded.
    out = {}
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            out[unquote(name)] = value
    return out


def _string_to_sign(request: Request) -> str:
    resource = request.path + (f"?{request.query}" if request.query else "")
    mns_headers = "".join(f"{k}:{v}\n" for k, v in sorted(request.headers.items()) if k.startswith("x-mns-"))
    parts = [request.method, request.header("content-md5"), request.header("content-type"), request.header("date")]
    return "\n".join(parts) + "\n" + mns_headers + resource


def _content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).hexdigest().encode()).decode()


def _request_id() -> str:
    return uuid.uuid4().hex[:24].upper()


def _headers(request_id: str) -> dict[str, str]:
    # Lower-case names: on an error without RequestId the SDK reads resp.header["x-mns-request-id"] verbatim.
    return {
        "x-mns-request-id": request_id,
        "x-mns-version": API_VERSION,
        "Content-Type": "text/xml;charset=utf-8",
        "Date": formatdate(usegmt=True),
    }


def _decoded(body: str) -> str | None:
    """The base64-decoded text of a body, or None when the body is not canonical base64 of UTF-8 text."""
    try:
        raw = base64.b64decode(body, validate=True)
        if base64.b64encode(raw).decode() != body or not body:
            return None
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _properties(root: ET.Element, container: str, item: str) -> tuple[dict[str, str], dict[str, str]]:
    values: dict[str, str] = {}
    types: dict[str, str] = {}
    holder = _xml.child(root, container)
    for prop in _xml.children(holder, item) if holder is not None else []:
        name = _xml.text(prop, "Name")
        if name:
            values[name] = _xml.text(prop, "Value") or ""
            types[name] = _xml.text(prop, "Type") or "STRING"
    return values, types


def _parse_root(body: bytes, tag: str) -> ET.Element:
    """The request document, which must be well-formed XML with a `tag` root element."""
    root = _xml.parse(body)
    if root is None:
        raise _MnsError(400, "MalformedXML", "The XML you provided was not well-formed.")
    if _xml.local(root.tag) != tag:
        raise _MnsError(400, "InvalidArgument", "The XML you provided did not validate against our published schema.")
    return root


def _parse_message(body: bytes, limit: int) -> dict[str, Any]:
    """The fields common to PublishMessage and SendMessage, validated like MNS does."""
    return _message_fields(_parse_root(body, "Message"), limit)


def _message_fields(root: ET.Element, limit: int) -> dict[str, Any]:
    """One `<Message>` element's fields (also each message of a BatchSendMessage)."""
    text = _xml.text(root, "MessageBody")
    if not text:
        raise _MnsError(
            400,
            "InvalidArgument",
            "The XML you provided did not validate against our published schema, cause by MessageBody.",
        )
    if len(text.encode("utf-8")) > limit:
        raise _MnsError(400, "InvalidArgument", MESSAGE_TOO_LONG)
    attributes_holder = _xml.child(root, "MessageAttributes")
    attributes = {_xml.local(a.tag): a.text or "" for a in attributes_holder} if attributes_holder is not None else {}
    properties, property_types = _properties(root, "UserProperties", "PropertyValue")
    system_properties, _ = _properties(root, "SystemProperties", "SystemPropertyValue")
    return {
        "message_id": uuid.uuid4().hex.upper(),
        "body": text,
        "decoded": _decoded(text),
        "tag": _xml.text(root, "MessageTag"),
        "attributes": attributes,
        "properties": properties,
        "property_types": property_types,
        "system_properties": system_properties,
        "group_id": _xml.text(root, "MessageGroupId"),
        "md5": hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper(),
        "at": time.time(),
    }


def _int_field(root: ET.Element, name: str, default: int, low: int, high: int) -> int:
    value = _xml.text(root, name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise _MnsError(400, "InvalidArgument", f"The value of {name} should between {low} and {high}.")
    return number


def _received_xml(message: dict[str, Any]) -> list[_xml.Child]:
    fields: list[_xml.Child] = [
        ("MessageId", message["message_id"]),
        ("ReceiptHandle", message["_receipt_handle"]),
        ("MessageBodyMD5", message["md5"]),
        ("MessageBody", message["body"]),
        ("EnqueueTime", str(message["enqueue_time"])),
        ("NextVisibleTime", str(int(message["visible_at"] * 1000))),
        ("FirstDequeueTime", str(message["first_dequeue_time"])),
        ("DequeueCount", str(message["dequeue_count"])),
        ("Priority", str(message["priority"])),
    ]
    if message["properties"]:
        fields.append(
            (
                "UserProperties",
                [
                    ("PropertyValue", [("Name", n), ("Value", v), ("Type", message["property_types"][n])])
                    for n, v in message["properties"].items()
                ],
            )
        )
    return fields
