"""The application: one instance per FC instance (module-level in handler.py), one `handle` per invocation.

event -> source adapter -> messages -> documents -> validation -> IMM apply -> outcomes -> sinks

Event triggers get `{"results": [...]}`; after everything is processed and reported, the handler raises
`DeliveryIncomplete` if and only if some outcome is not final (throttled/failed), so FC's async retry or
EventBridge's retry delivers the event again. Final failures never raise (a poison message must not loop).
HTTP requests always get an FC 3.0 response struct and never raise.
"""

from __future__ import annotations

import copy
import time
from functools import lru_cache
from typing import Any

from imm_batch_updater import credentials as creds
from imm_batch_updater import logs
from imm_batch_updater import outcome as oc
from imm_batch_updater import sinks as optional_sinks
from imm_batch_updater.apply import apply_update
from imm_batch_updater.config import DEFAULT_TIMEOUT_S, Settings
from imm_batch_updater.documents import Item, UpdateRequest, decode_json, parse_message
from imm_batch_updater.imm import ImmGateway
from imm_batch_updater.outcome import ErrorInfo, Outcome
from imm_batch_updater.pipeline import process
from imm_batch_updater.retry import Deadline, RetryBudget, RetryPolicy
from imm_batch_updater.sinks.base import Invocation, Sink
from imm_batch_updater.sinks.log import LogSink
from imm_batch_updater.sources import NOT_JSON, detect
from imm_batch_updater.sources.base import Message
from imm_batch_updater.sources.http import HttpSource
from imm_batch_updater.webhooks import ReplayGuard


class DeliveryIncomplete(Exception):
    """Raised after processing when some item is not final, so the platform retries the delivery."""


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


class InvocationContext:
    """Per-invocation view of FC's context: ids, timeout, region, and fresh credentials."""

    def __init__(self, context: Any, settings: Settings) -> None:
        self.raw = context
        self.settings = settings
        self.request_id: str | None = _get(context, "request_id")
        function = _get(context, "function")
        self.function_name: str | None = _get(function, "name")
        timeout = _get(function, "timeout")
        try:
            self.timeout_s = float(timeout) if timeout else DEFAULT_TIMEOUT_S
        except (TypeError, ValueError):
            self.timeout_s = DEFAULT_TIMEOUT_S
        self.region: str | None = settings.region(_get(context, "region"))
        self.deadline = Deadline.for_timeout(self.timeout_s)
        self.raw_event: bytes = b""  # the event as FC delivered it (a direct invocation's document)

    def credentials(self) -> creds.Credentials:
        return creds.resolve(self.raw)

    def oss_reader(self) -> Any:
        from imm_batch_updater.oss_reader import OssReader

        return OssReader(self)


class App:
    def __init__(self, extra_sinks: list[Sink] | None = None) -> None:
        self.replay = ReplayGuard()
        self.http = HttpSource()
        self.extra_sinks = extra_sinks
        self._warned: set[str] = set()

    # -- entry -----------------------------------------------------------------------------------------------
    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        settings = Settings.current()
        for warning in settings.warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                logs.warning("configuration", detail=warning)
        ctx = InvocationContext(context, settings)
        decoded, raw = decode_event(event)
        ctx.raw_event = raw
        if self.http.matches(decoded):
            return self.http.respond(decoded, self, ctx)
        source = detect(decoded)
        messages = source.messages(decoded, ctx)
        outcomes = self.run(messages, ctx, source.name)
        not_final = [o for o in outcomes if not o.final]
        if not_final:
            statuses = sorted({o.status for o in not_final})
            raise DeliveryIncomplete(
                f"{len(not_final)} of {len(outcomes)} update(s) not final ({', '.join(statuses)}); "
                "the platform will retry the delivery"
            )
        return {"results": [o.to_dict() for o in outcomes]}

    # -- shared by every source -------------------------------------------------------------------------------
    def run(self, messages: list[Message], ctx: InvocationContext, source_name: str) -> list[Outcome]:
        started = time.monotonic()
        if not messages:  # e.g. an OSS event holding only removal records: nothing to apply, nothing to retry
            logs.info("the event holds no update", request_id=ctx.request_id, source=source_name)
        plan = first_copies(messages, ctx)  # [] when no message id repeats (the common case)
        items: list[Item] = []
        spans: list[tuple[int, int]] = []  # with repeats, per message: its items, items[start:end]
        for position, message in enumerate(messages):
            first = plan[position] if plan else None
            if first is None:
                start = len(items)
                items.extend(parse_message(message, ctx.settings))
                spans.append((start, len(items)))
            else:
                spans.append(spans[first])  # a repeat: the first copy's results, without applying it again
        if any(isinstance(i, UpdateRequest) for i in items):
            items = self._apply_all(items, ctx)
        outcomes = [i for i in items if isinstance(i, Outcome)]
        if plan:
            outcomes = []
            for (start, end), first in zip(spans, plan, strict=True):
                done = [i for i in items[start:end] if isinstance(i, Outcome)]
                outcomes.extend(done if first is None else [_repeat_of(o) for o in done])
        self.report(outcomes, ctx, source_name, int((time.monotonic() - started) * 1000))
        return outcomes

    def _apply_all(self, items: list[Item], ctx: InvocationContext) -> list[Item]:
        settings = ctx.settings
        endpoint = settings.endpoint(ctx.region)
        try:
            if endpoint is None:
                raise _ConfigError("no IMM endpoint: set IMM_ENDPOINT or IMM_REGION (FC sets the region)")
            credentials = ctx.credentials()
        except (creds.CredentialsUnavailable, _ConfigError) as exc:
            code = "ConfigurationError" if isinstance(exc, _ConfigError) else "CredentialsUnavailable"
            logs.error("cannot call IMM", request_id=ctx.request_id, error_code=code, error_message=str(exc))
            return [_unapplied(i, code, str(exc)) if isinstance(i, UpdateRequest) else i for i in items]
        requests = [i for i in items if isinstance(i, UpdateRequest)]
        gateway = ImmGateway(
            endpoint=endpoint,
            protocol=settings.imm_protocol,
            region=ctx.region,
            credentials=credentials,
            policy=_policy(settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms),
            deadline=ctx.deadline,
            connect_timeout_ms=settings.connect_timeout_ms,
            read_timeout_ms=settings.read_timeout_ms,
            # Retries for the whole delivery: every attempt for one document, 2 more per further document, so a
            # delivery of 100 documents against a throttling IMM stops early instead of hammering it.
            budget=RetryBudget.for_delivery(len(requests), settings.max_attempts),
            refresh_credentials=ctx.credentials,
        )

        def apply(request: UpdateRequest) -> Outcome:
            try:
                return apply_update(request, gateway, precheck=settings.imm_precheck)
            except Exception as exc:  # a bug must still end in a reported (and retried) outcome
                logs.error("unexpected error", request_id=ctx.request_id, error_type=type(exc).__name__)
                return _unapplied(request, "InternalError", f"unexpected error: {type(exc).__name__}")

        outcomes = iter(process(requests, apply, settings.concurrency))
        return [next(outcomes) if isinstance(i, UpdateRequest) else i for i in items]

    def report(self, outcomes: list[Outcome], ctx: InvocationContext, source: str, duration_ms: int) -> None:
        invocation = Invocation(ctx.request_id, ctx.function_name, source)
        LogSink().emit(outcomes, invocation, duration_ms)
        for sink in self.sinks(ctx):
            try:
                sink.emit(outcomes, invocation, duration_ms)
            except Exception as exc:
                # The outcomes are already in the log; say which sink failed, without its (maybe secret) details.
                logs.error("sink failed", request_id=ctx.request_id, sink=sink.name, error_type=type(exc).__name__)

    def sinks(self, ctx: InvocationContext) -> list[Sink]:
        if self.extra_sinks is not None:
            return self.extra_sinks
        if not ctx.settings.result_sinks:
            return []
        return optional_sinks.configured(ctx)


class _ConfigError(Exception):
    pass


@lru_cache(maxsize=8)
def _policy(max_attempts: int, base_ms: int, cap_ms: int) -> RetryPolicy:
    """One RetryPolicy per setting (it holds no per-invocation state), instead of a new one per invocation."""
    return RetryPolicy(max_attempts, base_ms, cap_ms)


def first_copies(messages: list[Message], ctx: InvocationContext) -> list[int | None]:
    """For each message, None, or the position of an earlier message with the same id (the message is a repeat);
    an empty list when no message is a repeat.

    At-least-once delivery can put one message into a delivery twice (an EventBridge batch push holding a
    redelivered MNS message, an OSS record repeated). Applying it twice is harmless for IMM but wrong for order:
    with A, B, A(again) for one batch the last write would be the stale A. So a repeat is not applied; the first
    copy holds the message's place in the delivery order, and the repeat gets a copy of its results (DESIGN: one
    result per document), marked `duplicate`. Done on the ids the adapters set, so every trigger gets it;
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


def _repeat_of(outcome: Outcome) -> Outcome:
    repeat = copy.copy(outcome)
    repeat.attempts, repeat.duplicate = 0, True
    return repeat


def _unapplied(request: Item, code: str, message: str) -> Outcome:
    assert isinstance(request, UpdateRequest)
    return Outcome(
        status=oc.FAILED,
        project=request.project,
        batch_id=request.batch_id,
        error=ErrorInfo(code, message),
        source=request.source,
        message_id=request.message_id,
        index=request.index,
    )


def decode_event(event: Any) -> tuple[Any, bytes]:
    """(decoded JSON or NOT_JSON, raw bytes). FC passes bytes; str and dict are accepted too (tests, local).

    The same strict decoding as every document gets (`documents.decode_json`), so a direct invocation's document
    is decoded once: its message carries both the bytes (for the size limit) and the result.
    """
    if isinstance(event, (dict, list)):
        return event, b""
    raw = event.encode("utf-8") if isinstance(event, str) else bytes(event or b"")
    try:
        return decode_json(raw), raw
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return NOT_JSON, raw
