"""What every sink shares: the interface, the outcome filter, the notification payloads, errors and retries.

A sink module declares its own settings and builds itself from them: `configure(env, warnings)` parses its
variables into a frozen config (None when the sink is not asked for), and `config.build(ctx)` makes the sink for
one invocation (sinks sign with the invocation's credentials, fresh each time, so they never keep keys). The list
of sinks is `sinks.SINKS`; `config.Settings` holds what each configured one parsed.

Errors: a sink raises `SinkDeliveryError`, whose code and message are built from status codes and error codes
only. SDK exceptions carry the signed request (headers with the security token), so they are never logged or kept:
`App.report` logs "sink failed" with the sink's name, and the sink logs one "sink delivery error" line with the
error code first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol, TypeVar

from imm_batch_updater import logs, retry
from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Outcome, Status
from imm_batch_updater.retry import CallError, RetryPolicy

NOTIFICATION_TYPE_ONE = "imm_batch_updater.outcome"  # one outcome (MNS topic: one message per outcome)
NOTIFICATION_TYPE_MANY = "imm_batch_updater.outcomes"  # the outcomes of one invocation (webhook, FC function)


class Invocation(NamedTuple):
    """What the sinks may say about the invocation an outcome belongs to (immutable; built per invocation)."""

    request_id: str | None
    function_name: str | None
    source: str


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        """Deliver the outcomes. May raise: the caller logs the failure (the log line is already written)."""
        ...


class SinkConfig(Protocol):
    @property
    def name(self) -> str: ...

    def build(self, ctx: Context) -> Sink:
        """The sink for one invocation. Raises SinkConfigError (refused by the anti-loop rules, or incomplete)."""
        ...


class SinkType(Protocol):
    """A sink module's entry in `sinks.SINKS`."""

    @property
    def name(self) -> str: ...

    @property
    def variables(self) -> tuple[str, ...]:
        """The environment variables it reads."""
        ...

    def configure(self, env: Mapping[str, str], warnings: list[str]) -> SinkConfig | None: ...


class SinkDeliveryError(CallError):
    """A sink could not deliver. `code` and the message never contain key material, bodies or headers."""

    def __init__(self, code: str, message: str, *, retriable: bool, http_status: int | None = None) -> None:
        super().__init__(code, message, retriable=retriable)
        self.http_status = http_status


class SinkConfigError(Exception):
    """The sink's configuration is refused (anti-loop rule) or incomplete; the sink is left out."""

    def __init__(self, sink: str, reason: str, *, refused: bool) -> None:
        super().__init__(reason)
        self.sink = sink
        self.reason = reason
        self.refused = refused


# -- the outcome filter ------------------------------------------------------------------------------------------
def is_failure(outcome: Outcome) -> bool:
    """Not a success: `queued` is a success handed on to the work queue (logged at INFO), not a failure."""
    return not outcome.ok and outcome.status is not Status.QUEUED


def is_dead_letter(outcome: Outcome) -> bool:
    """A final failure: never retried by the platform, so it must reach the operators."""
    return outcome.final and is_failure(outcome)


def select(outcomes: list[Outcome], mode: str) -> list[Outcome]:
    """`all`, `failures` (not a success) or `dead_letters` (final failures). Every mode keeps the dead letters."""
    if mode == "dead_letters":
        return [o for o in outcomes if is_dead_letter(o)]
    if mode == "failures":
        return [o for o in outcomes if is_failure(o)]
    return list(outcomes)


# -- payloads ----------------------------------------------------------------------------------------------------
def result_of(outcome: Outcome, invocation: Invocation) -> dict[str, Any]:
    """The outcome as the function returns it, plus what a consumer of a notification needs to route it."""
    out = outcome.to_dict()
    out["final"] = outcome.final
    out["dead_letter"] = is_dead_letter(outcome)
    out["source"] = outcome.source or invocation.source
    return out


def truncate(result: dict[str, Any]) -> dict[str, Any]:
    """`result` (a `result_of` dict, changed in place) without what can grow (its diff, error details, a long
    error message) and marked `truncated`: for a notification too large for its channel (MNS's 64 KB message, FC's
    128 KB async payload). Status, ids and the error code stay."""
    result.pop("diff", None)
    if isinstance(result.get("error"), dict):
        result["error"].pop("details", None)
        result["error"]["message"] = str(result["error"].get("message", ""))[:1000]
    result["truncated"] = True
    return result


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _meta(invocation: Invocation, duration_ms: int) -> dict[str, Any]:
    return {
        "request_id": invocation.request_id,
        "function": invocation.function_name,
        "source": invocation.source,
        "duration_ms": duration_ms,
    }


def notification_one(outcome: Outcome, invocation: Invocation, duration_ms: int) -> dict[str, Any]:
    data = {**_meta(invocation, duration_ms), "result": result_of(outcome, invocation)}
    return {"type": NOTIFICATION_TYPE_ONE, "timestamp": _now_iso(), "data": data}


def notification_many(outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> dict[str, Any]:
    data = {**_meta(invocation, duration_ms), "results": [result_of(o, invocation) for o in outcomes]}
    return {"type": NOTIFICATION_TYPE_MANY, "timestamp": _now_iso(), "data": data}


# -- retries -----------------------------------------------------------------------------------------------------
T = TypeVar("T")


def deliver(
    ctx: Context,
    attempt: Callable[[float], T],
    classify: Callable[[BaseException], SinkDeliveryError],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `attempt(timeout_s)` through the retry helper: RESULT_SINK_ATTEMPTS attempts while the error is
    retriable and time is left, each with RESULT_SINK_TIMEOUT_MS cut to what is left of the invocation, and the
    whole call bounded by the invocation's deadline (`ctx.sinks_deadline`: the calls before the report stopped
    early enough to leave the sinks their reserve)."""
    settings = ctx.settings
    policy = _policy(settings.sink_attempts)

    def one(left_s: float) -> T:
        try:
            return attempt(min(settings.sink_timeout_ms / 1000.0, left_s))
        except SinkDeliveryError:
            raise
        except Exception as exc:
            raise classify(exc) from None

    try:
        result, _ = retry.call(one, policy=policy, deadline=ctx.sinks_deadline, what="to notify", sleep=sleep)
    except SinkDeliveryError:
        raise
    except CallError as error:  # DeadlineExceeded
        raise SinkDeliveryError(error.code, error.message, retriable=False) from None
    return result


_POLICIES: dict[int, RetryPolicy] = {}


def _policy(attempts: int) -> RetryPolicy:
    policy = _POLICIES.get(attempts)
    if policy is None:
        policy = _POLICIES[attempts] = RetryPolicy(max_attempts=attempts, base_ms=100, cap_ms=1000)
    return policy


def report_failure(sink: str, error: SinkDeliveryError, request_id: str | None, **counts: int) -> None:
    """The one detail line a failing sink writes (codes and counts only); App.report adds "sink failed"."""
    logs.warning(
        "sink delivery error",
        request_id=request_id,
        sink=sink,
        error_code=error.code,
        error_message=error.message,
        http_status=error.http_status,
        **counts,
    )
