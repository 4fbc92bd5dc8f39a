"""The application: one `App` per FC instance (module-level in handler.py), one `handle` per invocation.

Data flows one way, top to bottom of `App.handle`:

    event bytes -> decode (strictjson, once) -> detect the source -> source.receive: messages
      -> documents (split, refuse, validate) -> IMM apply (selectors expanded, per-batch order, parallel)
      -> outcomes -> sinks (the log line first) -> source.answer

Each source shapes its own answer (HTTP: the response struct; event triggers: `{"results": [...]}`, raised as
`DeliveryIncomplete` when some outcome is not final, so FC's or EventBridge's retry delivers the event again).
Final failures never raise: a poison message must not loop. A bug anywhere on this side ends as a final
`rejected` `InternalError` outcome, reported like any other, never as an exception that would make the platform
retry what cannot succeed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from imm_batch_updater import logs
from imm_batch_updater.apply import apply_update, unapplied
from imm_batch_updater.config import Settings
from imm_batch_updater.context import Endpoint, EndpointUnknown, InvocationContext, endpoint
from imm_batch_updater.credentials import CredentialsUnavailable
from imm_batch_updater.documents import NOTIFICATION_CODE, Item, UpdateRequest, documents_of
from imm_batch_updater.imm import ImmClient
from imm_batch_updater.outcome import ErrorInfo, Outcome, Status, replace
from imm_batch_updater.pipeline import process
from imm_batch_updater.ratelimit import pacer
from imm_batch_updater.retry import RetryBudget, RetryPolicy
from imm_batch_updater.sinks import Invocation, configured_sinks
from imm_batch_updater.sinks.log import write as write_log
from imm_batch_updater.sources import Sources
from imm_batch_updater.sources.base import DeliveryIncomplete, Message, NotJsonEvent, bounded_id
from imm_batch_updater.strictjson import Decoded, NotJson, decode

__all__ = ["App", "DeliveryIncomplete", "decode_event"]


class App:
    def __init__(self) -> None:
        self.sources = Sources()
        self._warned: set[str] = set()

    def handle(self, event: Any, context: Any) -> Any:
        started = time.monotonic()
        settings = Settings.current()
        if settings.warnings:
            self._warn_once(settings.warnings)
        ctx = InvocationContext(context, settings)
        # FC's request id is a UUID; a context made by another caller may hold anything, and it stands in as the
        # message id of direct and STREAM invocations and goes into every log line: bounded like every message id.
        ctx.request_id = bounded_id(ctx.request_id)
        decoded = decode_event(event)
        source = self.sources.detect(decoded)
        try:
            if isinstance(decoded, NotJsonEvent):  # a direct invocation's bytes, or an HTTP event that is not UTF-8
                receiver = self.sources.http if source is self.sources.http else self.sources.direct
                delivery = receiver.receive(decoded, ctx)
            else:
                delivery = source.receive(decoded, ctx)
            if delivery.answer is not None:  # answered without applying anything (an HTTP route, a 401, a replay)
                return delivery.answer
            outcomes = self.apply(delivery.messages, ctx)
        except Exception as exc:  # a bug: final, reported, never retried by the platform
            logs.error("unexpected error", request_id=ctx.request_id, source=source.name, error_type=type(exc).__name__)
            delivery, outcomes = _internal_error(source.name, ctx, exc)
        self.report(outcomes, ctx, source.name, int((time.monotonic() - started) * 1000))
        return source.answer(delivery, outcomes, ctx)

    def _warn_once(self, warnings: tuple[str, ...]) -> None:
        for warning in warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                logs.warning("configuration", detail=warning)

    # -- messages -> outcomes ---------------------------------------------------------------------------------
    def apply(self, messages: Sequence[Message], ctx: InvocationContext) -> list[Outcome]:
        if not messages:  # e.g. an OSS event holding only removal records: nothing to apply, nothing to retry
            logs.info("the event holds no update", request_id=ctx.request_id)
        plan = first_copies(messages, ctx) if len(messages) > 1 else []  # [] when no message id repeats
        if not plan:  # the common case: every message is applied
            items: list[Item] = []
            for message in messages:
                items.extend(documents_of(message, ctx.settings))
            return self._apply_requests(items, ctx)[0]
        items = []
        spans: list[tuple[int, int]] = []  # with repeats, per message: its items, items[start:end]
        for position, message in enumerate(messages):
            first = plan[position]
            if first is None:
                start = len(items)
                items.extend(documents_of(message, ctx.settings))
                spans.append((start, len(items)))
            else:
                spans.append(spans[first])  # a repeat: the first copy's results, without applying it again
        done_items, sizes = self._apply_requests(items, ctx)
        ends = [0]
        for size in sizes:
            ends.append(ends[-1] + size)
        outcomes: list[Outcome] = []
        for (start, end), first in zip(spans, plan, strict=True):
            done = done_items[ends[start] : ends[end]]
            outcomes.extend(done if first is None else [replace(o, attempts=0, duplicate=True) for o in done])
        return outcomes

    def _apply_requests(self, items: list[Item], ctx: InvocationContext) -> tuple[list[Outcome], list[int]]:
        """`items` with every UpdateRequest replaced by its outcome(s): a selector by one per matched batch; and the
        number of outcomes of each item (in the order of `items`)."""
        settings = ctx.settings
        sizes: list[int] = []
        requests = [i for i in items if isinstance(i, UpdateRequest)]
        if not requests:  # nothing to send (every document was refused)
            return [i for i in items if isinstance(i, Outcome)], [1] * len(items)
        try:
            imm = self._imm_client(ctx, len(requests))
        except (CredentialsUnavailable, EndpointUnknown) as exc:
            code = "ConfigurationError" if isinstance(exc, EndpointUnknown) else "CredentialsUnavailable"
            logs.error("cannot call IMM", request_id=ctx.request_id, error_code=code, error_message=str(exc))
            failed = [i if isinstance(i, Outcome) else unapplied(i, Status.FAILED, code, str(exc)) for i in items]
            return failed, [1] * len(items)

        flat: list[Item] = []
        fan_out: list[tuple[int, int]] = []  # selections large enough for the work queue: flat[start:end]
        for item in items:
            if isinstance(item, UpdateRequest) and item.selector is not None:
                from imm_batch_updater import fleet  # only fleet documents need it

                expanded = fleet.expand(item, imm, ctx)
                sizes.append(len(expanded))
                if fleet.may_fan_out(item, expanded, ctx):
                    fan_out.append((len(flat), len(flat) + len(expanded)))
                flat.extend(expanded)
            else:
                sizes.append(1)
                flat.append(item)
        if fan_out:
            from imm_batch_updater import fleet

            flat = fleet.fan_out(flat, fan_out, ctx)
        if len(flat) > 1 and any(isinstance(i, UpdateRequest) and i.current is not None for i in flat):
            flat = _stale_listings_dropped(flat)
        if len(flat) != len(items):  # selectors matched batches: the retry budget covers each of them
            to_apply = sum(isinstance(i, UpdateRequest) for i in flat)
            imm.budget = RetryBudget.for_delivery(to_apply, settings.max_attempts)

        def apply(request: UpdateRequest) -> Outcome:
            try:
                return apply_update(request, imm, precheck=settings.imm_precheck)
            except Exception as exc:  # a bug on this side: final, never retried
                logs.error("unexpected error", request_id=ctx.request_id, error_type=type(exc).__name__)
                return unapplied(request, Status.REJECTED, "InternalError", f"unexpected error: {type(exc).__name__}")

        return process(flat, apply, settings.concurrency), sizes

    @staticmethod
    def _imm_client(ctx: InvocationContext, documents: int) -> ImmClient:
        settings = ctx.settings
        endpoint, policy = _endpoint_and_policy(settings, ctx.imm_region)  # IMM_REGION: IMM's region, only here
        # In ImmClient's order, not as keywords: a Python class called with keywords packs them into a dict first
        # (about 0.7 us of every update between two IMM calls: bench/README.md).
        return ImmClient(
            endpoint,
            ctx.imm_region,  # region
            ctx.credentials(),  # credentials
            policy,
            ctx.deadline,  # deadline
            settings.connect_timeout_ms,
            settings.read_timeout_ms,
            # budget: retries for the whole delivery: every attempt for one document, 2 more per further document,
            # so a delivery of 100 documents against a throttling IMM stops early instead of hammering it. One
            # document gets every attempt of every call anyway: no budget to keep.
            RetryBudget.for_delivery(documents, settings.max_attempts) if documents > 1 else None,
            ctx.credentials,  # refresh_credentials
            pacer(settings.imm_max_qps) if settings.imm_max_qps > 0 else None,  # pacer
        )

    # -- outcomes -> sinks ------------------------------------------------------------------------------------
    def report(self, outcomes: list[Outcome], ctx: InvocationContext, source: str, duration_ms: int) -> None:
        write_log(outcomes, ctx.request_id, ctx.function_name, source, duration_ms)  # always, and first
        if not ctx.settings.sinks:
            return
        if any(o.error is not None and o.error.code == NOTIFICATION_CODE for o in outcomes):
            # One of this function's own notifications came back as an update: notifying its outcome again would
            # loop (result topic -> trigger -> result topic ...). Logged above; the sinks get the others.
            logs.warning("outcome notification received as an update: not notified again", request_id=ctx.request_id)
            outcomes = [o for o in outcomes if o.error is None or o.error.code != NOTIFICATION_CODE]
            if not outcomes:
                return
        invocation = Invocation(ctx.request_id, ctx.function_name, source)
        try:
            sinks = configured_sinks(ctx)
        except Exception as exc:  # never raised out of the report: the outcomes are already logged
            logs.error("sink failed", request_id=ctx.request_id, sink="configuration", error_type=type(exc).__name__)
            return
        for sink in sinks:
            try:
                sink.emit(outcomes, invocation, duration_ms)
            except Exception as exc:
                # The outcomes are already in the log; say which sink failed, without its (maybe secret) details.
                logs.error("sink failed", request_id=ctx.request_id, sink=sink.name, error_type=type(exc).__name__)


_last_target: tuple[Settings, str | None, Endpoint, RetryPolicy] | None = None


def _endpoint_and_policy(settings: Settings, region: str | None) -> tuple[Endpoint, RetryPolicy]:
    """IMM's endpoint and the retry policy: the last invocation's when its settings (parsed once per instance) and
    region are the same, which saves two cache lookups on every update (bench/README.md). Raises EndpointUnknown."""
    global _last_target
    last = _last_target
    if last is None or last[0] is not settings or last[1] != region:
        endpoint = _imm_endpoint(settings.imm_endpoint, settings.imm_protocol, region, settings.imm_network)
        policy = _policy(settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms)
        last = _last_target = (settings, region, endpoint, policy)  # one tuple, replaced whole (threads)
    return last[2], last[3]


@lru_cache(maxsize=16)
def _imm_endpoint(configured: str | None, protocol: str, region: str | None, network: str | None) -> Endpoint:
    """IMM_ENDPOINT (host[:port] with IMM_PROTOCOL, or a URL), else IMM's region's public or VPC endpoint."""
    return endpoint(
        "imm",
        configured,
        variable="IMM_ENDPOINT",
        region=region,
        network=network,
        default_scheme=protocol,
        region_variable="IMM_REGION",
    )


@lru_cache(maxsize=8)
def _policy(max_attempts: int, base_ms: int, cap_ms: int) -> RetryPolicy:
    """One RetryPolicy per setting (it holds no per-invocation state)."""
    return RetryPolicy(max_attempts, base_ms, cap_ms)


def first_copies(messages: Sequence[Message], ctx: InvocationContext) -> list[int | None]:
    """For each message, None, or the position of an earlier message with the same id (the message is a repeat);
    an empty list when no message is a repeat.

    At-least-once delivery can put one message into a delivery twice (an EventBridge batch push holding a
    redelivered MNS message, an OSS record repeated). Applying it twice is harmless for IMM but wrong for order:
    with A, B, A(again) for one batch the last write would be the stale A. So a repeat is not applied; the first
    copy holds the message's place in the delivery order, and the repeat gets a copy of its results (one result per
    document), marked `duplicate`. Done on the ids the adapters set, so every trigger gets it;
    messages without an id are never merged.
    """
    if len(messages) < 2:
        return []
    seen: dict[str, int] = {}
    plan: list[int | None] = []
    for position, message in enumerate(messages):
        first = seen.get(message.message_id) if message.message_id is not None else None
        if first is not None:
            logs.info(
                "duplicate message in the delivery: applied once",
                request_id=ctx.request_id,
                source=message.source,
                message_id=message.message_id,
            )
        elif message.message_id is not None:
            seen[message.message_id] = position
        plan.append(first)
    return plan if any(first is not None for first in plan) else []


def _stale_listings_dropped(items: list[Item]) -> list[Item]:
    """A selector's listing shows a batch as it was before this delivery. When an earlier document of the delivery
    targets the same batch, that view is stale by the time this request runs (the earlier one may change the values
    or the state): such a request reads the batch again like an `Id` document, so that a stale view never makes it
    look `unchanged` (skipped) and the last document for a batch wins. It is read even with IMM_PRECHECK=false: a
    selected batch's result always carries its audit `diff`."""
    seen: set[tuple[str, str]] = set()
    out = list(items)
    for n, item in enumerate(out):
        if isinstance(item, UpdateRequest):
            if item.current is not None and item.key in seen:
                out[n] = item._replace(current=None, read_first=True)
            seen.add(item.key)
    return out


def _internal_error(source: str, ctx: InvocationContext, exc: Exception) -> tuple[Any, list[Outcome]]:
    from imm_batch_updater.sources.base import Delivery

    error = ErrorInfo("InternalError", f"unexpected error while handling the event: {type(exc).__name__}")
    return Delivery(), [Outcome(Status.REJECTED, error=error, source=source, message_id=ctx.request_id)]


def decode_event(event: Any) -> Decoded | NotJsonEvent:
    """The event, decoded once and strictly. FC passes bytes; str, dict and list are accepted too (local runs)."""
    if isinstance(event, (dict, list)):
        try:  # ensure_ascii: a lone surrogate becomes an escape the strict decoder then finds
            event = json.dumps(event, ensure_ascii=True)
        except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deeply to encode
            return NotJsonEvent(b"", NotJson("NotJson", "the event is not JSON data"))
    if isinstance(event, str):
        raw = event.encode("utf-8", "surrogatepass")
        source: bytes | str = event
    else:
        raw = source = bytes(event or b"")
    try:
        return decode(source)
    except NotJson as exc:
        return NotJsonEvent(raw, exc)
