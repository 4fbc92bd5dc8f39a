"""Fan-out of large selections over the work queue (`WORK_QUEUE`, README "Fleet updates").

When a selector (not a DryRun) matches more than `FANOUT_BATCHES` batches and `WORK_QUEUE` names an MNS queue, the
function applies none of them itself: each matched batch becomes one single-`Id` document (the same changes and
`Resume`), the documents are packed into messages whose body is a JSON array of at most 50 of them, and the
messages are sent with MNS `BatchSendMessage` (signed with the role's STS credentials through the MNS SDK). The
queue triggers this same function through EventBridge (batch push), so FC applies the work on as many instances as
the trigger allows; each instance paces its IMM calls with `IMM_MAX_QPS`.

    trigger -> function (lists, sends) -> work queue -> function instances -> IMM

Endpoint: WORK_QUEUE_ENDPOINT, else the account's MNS endpoint in the function's own region (`context.region`, else
FC_REGION; `-internal` with IMM_NETWORK=vpc), never IMM_REGION's: the queue is the function's own trigger, so it is
in the function's region even when IMM is in another.

Each batch's result is `queued` with `"queue": "<name>"`. A send that fails is retried within the deadline
(`retry.call`, `ctx.deadline`: like the IMM calls, the sends end before the optional sinks' reserve, so the
selection's outcomes and the delivery's dead letters still reach the sinks when MNS is slow); one that still fails
leaves its batches `failed` (not final): the platform delivers the original
event again, the selector is listed again and the documents are sent again, which is harmless (each applies an
UpdateBatch that sets values). A document too large for an MNS message is `rejected` (it never fits).

Limits (MNS API reference, SendMessage / BatchSendMessage): at most 16 messages per BatchSendMessage, and at most
64 KB for one message's body and for all the bodies of one request together, counted as sent: the SDK
base64-encodes bodies (4/3 larger), so a body's JSON is kept under 47,000 bytes and a request's under 48,000.

A queue can be created with a smaller MaximumMessageSize (1 KB to 64 KB), which the function cannot see without
another permission (GetQueueAttributes): MNS refuses a larger body with 400 `InvalidArgument` (emulator/mns.py has
the wire facts), for the whole request or per message. Sending it again can never succeed, so it is not retried as
it is: a refused message of several documents is halved and sent again within the deadline (`send`), and a
document MNS refuses on its own is `rejected` with `WorkItemTooLarge`, naming the queue and its MaximumMessageSize.
Whatever the deadline leaves unsent is `failed`, as for any other send failure.
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


def _json(document: dict[str, Any]) -> str:
    """One work document as a work message holds it: compact JSON, UTF-8 as is."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


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
        text = _json(document)
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
    """One outcome per request, in order: `queued`, or `failed` (not sent; retried), or `rejected` (too large for
    any work message, or for the queue's MaximumMessageSize)."""
    settings = ctx.settings
    queue_name = settings.work_queue
    assert queue_name is not None
    # The queue triggers this same function: a message must be one it accepts (MAX_DOCUMENTS documents, and
    # MAX_BODY_BYTES as delivered, which is base64 unless the trigger decodes it), or its batches, reported
    # `queued` here, would end `invalid` there and never be applied.
    per_message = min(DOCUMENTS_PER_MESSAGE, settings.max_documents)
    max_body = min(MAX_BODY_BYTES, 3 * (settings.max_body_bytes // 4))
    documents = [r.document() for r in requests]
    messages, too_large = pack(documents, per_message, max_body)
    results: list[Outcome | None] = [None] * len(requests)
    for position in too_large:
        error = ErrorInfo("WorkItemTooLarge", f"the document does not fit in one work message ({max_body} bytes)")
        results[position] = _outcome(requests[position], Status.REJECTED, error=error)
    try:
        url = endpoint(
            "mns",
            settings.work_queue_endpoint,
            variable="WORK_QUEUE_ENDPOINT",
            region=ctx.region,  # the function's own: the queue is its trigger (IMM_REGION is IMM's alone)
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
    # MNS refuses a body over the queue's MaximumMessageSize (which can be below 64 KB): a refused message of several
    # documents is halved and both halves are sent again, while the deadline allows; a document refused on its own
    # can never fit and is `rejected`. When MNS refuses a whole request it does not say which message was too
    # large: its one-document messages are sent again in requests of their own ("suspects"), split in two while
    # such a request is still refused, so a document that fits is never rejected.
    todo = messages  # messages to pack into BatchSendMessage requests
    suspects: list[list[tuple[str, list[int]]]] = []  # requests of one-document messages, sent as they are
    while todo or suspects:
        groups = requests_of(todo) + suspects
        todo, suspects = [], []
        for group in groups:
            accepted: set[int] = set()  # the group's messages MNS took
            refused: dict[int, bool] = {}  # ... it refused for their size (True: this message itself, for sure)
            if failure is None:
                failure = _send_group(queue, [MnsMessage(body) for body, _ in group], policy, ctx, accepted, refused)
            unsure: list[tuple[str, list[int]]] = []  # one-document messages refused with the others of a request
            for n, (body, positions) in enumerate(group):
                if n in refused:
                    if len(positions) > 1:  # several documents: halve the message and send both halves again
                        half = len(positions) // 2
                        todo += [_message(documents, positions[:half]), _message(documents, positions[half:])]
                    elif refused[n]:  # one document MNS refused on its own: it can never fit this queue
                        error = _too_large_for_queue(queue_name, body)
                        results[positions[0]] = _outcome(requests[positions[0]], Status.REJECTED, error=error)
                    else:
                        unsure.append((body, positions))
                elif n in accepted:
                    for position in positions:
                        results[position] = _outcome(requests[position], Status.QUEUED, queue=queue_name)
                else:  # not sent (this group failed, or an earlier one did): the platform retries the delivery
                    assert failure is not None
                    for position in positions:
                        results[position] = _outcome(requests[position], Status.FAILED, error=failure)
            if unsure and len(unsure) == len(group):  # only one-document messages, refused together: bisect
                suspects += [unsure[: len(unsure) // 2], unsure[len(unsure) // 2 :]]
            elif unsure:  # refused along with larger messages (halved above): try them among themselves
                suspects += requests_of(unsure)
    return [r for r in results if r is not None]


def _message(documents: list[dict[str, Any]], positions: list[int]) -> tuple[str, list[int]]:
    """A work message (JSON array body, as `pack` writes it) of the documents at `positions`."""
    return "[" + ",".join(_json(documents[p]) for p in positions) + "]", positions


def _too_large_for_queue(queue_name: str, body: str) -> ErrorInfo:
    sent = 4 * ((len(body.encode("utf-8")) + 2) // 3)  # the SDK sends the body base64-encoded
    return ErrorInfo(
        "WorkItemTooLarge",
        f"WORK_QUEUE {queue_name!r} refused the work document for its size: {sent} bytes as sent (base64) is over "
        f"the queue's MaximumMessageSize (so that is below {sent} bytes; MNS allows up to 65536): raise the "
        "queue's MaximumMessageSize, or send smaller changes",
    )


def _send_group(
    queue: Any, group: list[Any], policy: RetryPolicy, ctx: Context, accepted: set[int], refused: dict[int, bool]
) -> ErrorInfo | None:
    """None when every message of the group was either taken or refused for its size, else why not (after the
    retries the deadline allows). The positions in `group` of the messages MNS took are added to `accepted`, and a
    retry sends only the others (never a message twice). A message MNS refused for its size (`TOO_LARGE_CODE`: it
    would be refused again) goes to `refused`, True when the refusal was that message's own: MNS answered per
    message (its MessageId or its ErrorCode), or it was the only one sent; False when MNS refused the whole
    request (it does not say which message is too large)."""

    def attempt(left_s: float) -> None:
        pending = [n for n in range(len(group)) if n not in accepted and n not in refused]
        mns_client.set_timeout(queue.mns_client, left_s)
        try:
            queue.batch_send_message([group[n] for n in pending])
        except Exception as exc:
            code, message, retriable = mns_client.classify(exc, "the work documents")
            entries = getattr(exc, "sub_errors", None)
            if isinstance(entries, list) and len(entries) == len(pending):
                others: list[str] = []  # the error codes of messages neither taken nor refused for size
                for n, entry in zip(pending, entries, strict=True):
                    entry = entry if isinstance(entry, dict) else {}
                    if entry.get("MessageId") and not entry.get("ErrorCode"):
                        accepted.add(n)
                    elif entry.get("ErrorCode") == mns_client.TOO_LARGE_CODE:
                        refused[n] = True
                    else:
                        others.append(str(entry.get("ErrorCode") or code))
                if not others:
                    return
                code, retriable = others[0], mns_client.retriable_code(others[0])
            elif code == mns_client.TOO_LARGE_CODE:
                refused.update((n, len(pending) == 1) for n in pending)
                return
            raise CallError(code, message, retriable=retriable) from None
        accepted.update(pending)

    try:
        retry.call(attempt, policy=policy, deadline=ctx.deadline, what="to send to the work queue")
    except CallError as error:
        return ErrorInfo(error.code, f"could not send to the work queue: {error.message}")
    return None
