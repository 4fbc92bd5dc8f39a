"""Fan-out of large selections over the work queue (`WORK_QUEUE`, README "Fleet updates").

When a selector (not a DryRun) matches more than `FANOUT_BATCHES` batches and `WORK_QUEUE` names an MNS queue, the
function applies none of them itself: each matched batch becomes one single-`Id` document (the same changes and
`Resume`), the documents are packed into messages whose body is a JSON array of at most 50 of them, and the
messages are sent with MNS `BatchSendMessage` (signed with the role's STS credentials through the MNS SDK). The
queue triggers this same function through EventBridge (batch push), so FC applies the work on as many instances as
the trigger allows; each instance paces its IMM calls with `IMM_MAX_QPS`.

    trigger -> function (lists, sends) -> work queue -> function instances -> IMM

Each batch's result is `queued` with `"queue": "<name>"`. A send that fails is retried within the deadline
(`retry.call`, `ctx.deadline`: like the IMM calls, the sends end before the optional sinks' reserve, so the
selection's outcomes and the delivery's dead letters still reach the sinks when MNS is slow); one that still fails
leaves its batches `failed` (not final): the platform delivers the original
event again, the selector is listed again and the documents are sent again, which is harmless (each applies an
UpdateBatch that sets values). A document too large for an MNS message is `rejected` (it never fits).

Limits (MNS API reference, SendMessage / BatchSendMessage): at most 16 messages per BatchSendMessage, and at most
64 KB for one message's body and for all the bodies of one request together, counted as sent: the SDK
base64-encodes bodies (4/3 larger), so a body's JSON is kept under 47,000 bytes and a request's under 48,000.
"""

from __future__ import annotations

import json
from typing import Any

from imm_batch_updater import mns_client, retry
from imm_batch_updater.context import Context, EndpointUnknown, endpoint
from imm_batch_updater.credentials import CredentialsUnavailable
from imm_batch_updater.documents import UpdateRequest
from imm_batch_updater.outcome import ErrorInfo, Outcome, Status
from imm_batch_updater.retry import CallError, RetryPolicy

DOCUMENTS_PER_MESSAGE = 50  # the pinned contract: bodies are JSON arrays of at most 50 documents
MESSAGES_PER_REQUEST = 16  # MNS BatchSendMessage
MAX_BODY_BYTES = 47_000  # one message: 64 KB after the SDK's base64
MAX_REQUEST_BYTES = 48_000  # all the bodies of one BatchSendMessage: 64 KB after base64 (65,536 * 3 / 4 = 49,152)


def requests_of(messages: list[tuple[str, list[int]]]) -> list[list[tuple[str, list[int]]]]:
    """The messages grouped into BatchSendMessage requests: at most 16, and MAX_REQUEST_BYTES of bodies, each."""
    groups: list[list[tuple[str, list[int]]]] = []
    size = 0
    for message in messages:
        length = len(message[0].encode("utf-8"))
        if not groups or len(groups[-1]) == MESSAGES_PER_REQUEST or size + length > MAX_REQUEST_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(message)
        size += length
    return groups


def pack(
    documents: list[dict[str, Any]], per_message: int = DOCUMENTS_PER_MESSAGE, max_body: int = MAX_BODY_BYTES
) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """(messages as (JSON body, positions of its documents), positions of documents too large for any message):
    at most `per_message` documents and `max_body` bytes of JSON per message."""
    messages: list[tuple[str, list[int]]] = []
    too_large: list[int] = []
    current: list[int] = []
    parts: list[str] = []
    size = 2  # "[]"
    for position, document in enumerate(documents):
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        length = len(text.encode("utf-8")) + 1
        if length + 2 > max_body:
            too_large.append(position)
            continue
        if current and (len(current) >= per_message or size + length > max_body):
            messages.append(("[" + ",".join(parts) + "]", current))
            current, parts, size = [], [], 2
        current.append(position)
        parts.append(text)
        size += length
    if current:
        messages.append(("[" + ",".join(parts) + "]", current))
    return messages, too_large


def _outcome(
    request: UpdateRequest, status: Status, queue: str | None = None, error: ErrorInfo | None = None
) -> Outcome:
    return Outcome(
        status,
        project=request.project,
        batch_id=request.batch_id,
        state=(request.current or {}).get("State"),
        error=error,
        queue=queue,
        attempts=request.listing_attempts,  # the selection's ListBatches calls, on its first result
        source=request.source,
        message_id=request.message_id,
        index=request.index,
    )


def send(requests: list[UpdateRequest], ctx: Context) -> list[Outcome]:
    """One outcome per request, in order: `queued`, or `failed` (not sent; retried), or `rejected` (too large)."""
    settings = ctx.settings
    queue_name = settings.work_queue
    assert queue_name is not None
    # The queue triggers this same function: a message must be one it accepts (MAX_DOCUMENTS documents, and
    # MAX_BODY_BYTES as delivered, which is base64 unless the trigger decodes it), or its batches, reported
    # `queued` here, would end `invalid` there and never be applied.
    per_message = min(DOCUMENTS_PER_MESSAGE, settings.max_documents)
    max_body = min(MAX_BODY_BYTES, 3 * (settings.max_body_bytes // 4))
    messages, too_large = pack([r.document() for r in requests], per_message, max_body)
    results: list[Outcome | None] = [None] * len(requests)
    for position in too_large:
        error = ErrorInfo("WorkItemTooLarge", f"the document does not fit in one work message ({max_body} bytes)")
        results[position] = _outcome(requests[position], Status.REJECTED, error=error)
    try:
        url = endpoint(
            "mns",
            settings.work_queue_endpoint,
            variable="WORK_QUEUE_ENDPOINT",
            region=ctx.region,
            account=ctx.account_id,
            network=settings.imm_network,
        ).url
        queue = mns_client.account(url, ctx.credentials()).get_queue(queue_name)
    except (EndpointUnknown, CredentialsUnavailable) as exc:
        failed = ErrorInfo("ConfigurationError", f"cannot send to WORK_QUEUE: {exc}")
        return [r or _outcome(requests[i], Status.FAILED, error=failed) for i, r in enumerate(results)]
    except Exception as exc:  # the SDK refused WORK_QUEUE_ENDPOINT / WORK_QUEUE (InvalidURL, ...): this selection only
        reason = f"cannot send to WORK_QUEUE: the MNS SDK refused its endpoint or name ({type(exc).__name__})"
        failed = ErrorInfo("ConfigurationError", reason)
        return [r or _outcome(requests[i], Status.FAILED, error=failed) for i, r in enumerate(results)]

    from mns.queue import Message as MnsMessage

    policy = RetryPolicy(settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms)
    failure: ErrorInfo | None = None
    for group in requests_of(messages):
        accepted: set[int] = set()  # the group's messages MNS took (all of them unless the send failed)
        if failure is None:
            failure = _send_group(queue, [MnsMessage(body) for body, _ in group], policy, ctx, accepted)
        for n, (_, positions) in enumerate(group):
            for position in positions:
                if failure is None or n in accepted:
                    results[position] = _outcome(requests[position], Status.QUEUED, queue=queue_name)
                else:  # not sent (this group failed, or an earlier one did): the platform retries the delivery
                    results[position] = _outcome(requests[position], Status.FAILED, error=failure)
    return [r for r in results if r is not None]


def _send_group(
    queue: Any, group: list[Any], policy: RetryPolicy, ctx: Context, accepted: set[int]
) -> ErrorInfo | None:
    """None when the messages were sent, else why not (after the retries the deadline allows). A BatchSendMessage
    can fail in part (MNS lists, per message, its MessageId or its ErrorCode): the positions in `group` of the
    messages MNS took are added to `accepted`, and a retry sends only the others (never a message twice)."""

    def attempt(left_s: float) -> Any:
        pending = [n for n in range(len(group)) if n not in accepted]
        mns_client.set_timeout(queue.mns_client, left_s)
        try:
            return queue.batch_send_message([group[n] for n in pending])
        except Exception as exc:
            entries = getattr(exc, "sub_errors", None)
            if isinstance(entries, list) and len(entries) == len(pending):
                for n, entry in zip(pending, entries, strict=True):
                    if isinstance(entry, dict) and entry.get("MessageId") and not entry.get("ErrorCode"):
                        accepted.add(n)
            code, message, retriable = mns_client.classify(exc, "the work documents")
            raise CallError(code, message, retriable=retriable) from None

    try:
        retry.call(attempt, policy=policy, deadline=ctx.deadline, what="to send to the work queue")
    except CallError as error:
        return ErrorInfo(error.code, f"could not send to the work queue: {error.message}")
    return None
