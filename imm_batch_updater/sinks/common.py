"""What the optional sinks (MNS topic, webhook, FC function) share: their settings, the outcome filter, the
notification payload, time limits and a safe error type.

Settings are read from the environment on every invocation (like `config.Settings`); every name is documented
in docs/deploy.md. A sink signs with the invocation's credentials (`ctx.credentials()`, fresh each time), so sinks
are built per invocation and never keep keys.

Errors: a sink raises `SinkDeliveryError`, whose code and message are built from status codes and error codes
only. SDK exceptions carry the signed request (headers with the security token), so they are never logged or
kept: `App.report` logs "sink failed" with the sink's name, and the sink logs one "sink delivery error" line with
the error code first.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from imm_batch_updater import logs
from imm_batch_updater.config import env_int
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.sinks.base import Invocation

# Which outcomes the optional sinks receive. Every mode includes the dead letters (final failures: `invalid`,
# `not_found`, `conflict`, `rejected`): they never raise, so the sinks and the log are their only trace.
FILTER_ALL = "all"  # every outcome
FILTER_FAILURES = "failures"  # every outcome that is not a success (final failures and retriable ones)
FILTER_DEAD_LETTERS = "dead_letters"  # final failures only
FILTERS = (FILTER_ALL, FILTER_FAILURES, FILTER_DEAD_LETTERS)

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_ATTEMPTS = 2
MIN_ATTEMPT_S = 0.2  # no attempt starts with less time than this left in the invocation

NOTIFICATION_TYPE_ONE = "imm_batch_updater.outcome"  # one outcome (MNS topic: one message per outcome)
NOTIFICATION_TYPE_MANY = "imm_batch_updater.outcomes"  # the outcomes of one invocation (webhook, FC function)


class SinkDeliveryError(Exception):
    """A sink could not deliver. `code` and the message never contain key material, bodies or headers."""

    def __init__(self, code: str, message: str, *, retriable: bool, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retriable = retriable
        self.http_status = http_status


class SinkConfigError(Exception):
    """The sink's configuration is refused (anti-loop rule) or incomplete; the sink is left out."""

    def __init__(self, sink: str, reason: str, *, refused: bool) -> None:
        super().__init__(reason)
        self.sink = sink
        self.reason = reason
        self.refused = refused


def _names(raw: str | None) -> tuple[str, ...]:
    return tuple(p for p in (raw or "").replace(",", " ").split() if p)


def topic_name(value: str) -> str:
    """`my-topic` or an ARN `acs:mns:cn-hangzhou:123:/topics/my-topic[/messages]` -> `my-topic`."""
    value = value.strip()
    if "/topics/" in value:
        value = value.split("/topics/", 1)[1]
    return value.split("/", 1)[0]


@dataclass(frozen=True)
class SinkSettings:
    filter: str = FILTER_ALL
    mns_topic: str | None = None
    mns_endpoint: str | None = None
    mns_filter: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_filter: str | None = None
    fc_function: str | None = None
    fc_endpoint: str | None = None
    fc_filter: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    attempts: int = DEFAULT_ATTEMPTS
    trigger_mns_topics: tuple[str, ...] = ()
    inbound_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)  # WEBHOOK_SECRET (HTTP trigger)
    network: str | None = None  # IMM_NETWORK: `vpc` also selects the internal MNS and FC endpoints
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SinkSettings:
        env = os.environ if env is None else env
        warnings: list[str] = []

        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def mode(name: str, default: str | None) -> str | None:
            raw = text(name)
            if raw is None:
                return default
            value = raw.lower().replace("-", "_")
            if value not in FILTERS:
                # Fail open: an unknown filter sends everything rather than dropping dead letters.
                warnings.append(f"{name} must be one of {', '.join(FILTERS)}; using {FILTER_ALL}")
                return FILTER_ALL
            return value

        def integer(name: str, default: int, low: int, high: int) -> int:
            return env_int(text(name), name, default, low, high, warnings)

        return cls(
            filter=mode("RESULT_SINK_FILTER", FILTER_ALL) or FILTER_ALL,
            mns_topic=text("RESULT_MNS_TOPIC"),
            mns_endpoint=text("RESULT_MNS_ENDPOINT"),
            mns_filter=mode("RESULT_MNS_FILTER", None),
            webhook_url=text("RESULT_WEBHOOK_URL"),
            webhook_secret=text("RESULT_WEBHOOK_SECRET"),
            webhook_filter=mode("RESULT_WEBHOOK_FILTER", None),
            fc_function=text("RESULT_FC_FUNCTION"),
            fc_endpoint=text("RESULT_FC_ENDPOINT"),
            fc_filter=mode("RESULT_FC_FILTER", None),
            timeout_ms=integer("RESULT_SINK_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, 100, 60_000),
            attempts=integer("RESULT_SINK_ATTEMPTS", DEFAULT_ATTEMPTS, 1, 5),
            trigger_mns_topics=tuple(topic_name(t) for t in _names(env.get("TRIGGER_MNS_TOPICS"))),
            inbound_webhook_secrets=_names(env.get("WEBHOOK_SECRET")),
            network=(text("IMM_NETWORK") or "").lower() or None,
            warnings=tuple(warnings),
        )


# -- the outcome filter ------------------------------------------------------------------------------------------
def is_dead_letter(outcome: Outcome) -> bool:
    """A final failure: never retried by the platform, so it must reach the operators."""
    return outcome.final and not outcome.ok


def select(outcomes: list[Outcome], mode: str) -> list[Outcome]:
    if mode == FILTER_DEAD_LETTERS:
        return [o for o in outcomes if is_dead_letter(o)]
    if mode == FILTER_FAILURES:
        return [o for o in outcomes if not o.ok]
    return list(outcomes)


# -- payloads ----------------------------------------------------------------------------------------------------
def result_of(outcome: Outcome, invocation: Invocation) -> dict[str, Any]:
    """The outcome as the function returns it, plus what a consumer of a notification needs to route it."""
    out = outcome.to_dict()
    out["final"] = outcome.final
    out["dead_letter"] = is_dead_letter(outcome)
    out["source"] = outcome.source or invocation.source
    return out


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


# -- context helpers ---------------------------------------------------------------------------------------------
def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def account_id(ctx: Any) -> str | None:
    value = _get(getattr(ctx, "raw", None), "account_id") or os.environ.get("FC_ACCOUNT_ID") or ""
    return str(value).strip() or None


def own_function_name(ctx: Any) -> str | None:
    return getattr(ctx, "function_name", None) or os.environ.get("FC_FUNCTION_NAME") or None


def account_and_region(ctx: Any, sink: str, service: str, variable: str, endpoint_variable: str) -> tuple[str, str]:
    """The account id and region a sink's default endpoint is built from, or a SinkConfigError naming the override."""
    account = account_id(ctx)
    region = getattr(ctx, "region", None)
    if not account or not region:
        raise SinkConfigError(
            sink,
            f"{variable} is set but the {service} endpoint is unknown: no account id (context.account_id / "
            f"FC_ACCOUNT_ID) or region; set {endpoint_variable}",
            refused=False,
        )
    return account, region


def split_endpoint(value: str) -> tuple[str, str]:
    """`http://127.0.0.1:9100` -> ("http", "127.0.0.1:9100"); a bare host means https."""
    value = value.strip().rstrip("/")
    for scheme in ("http", "https"):
        if value.lower().startswith(scheme + "://"):
            return scheme, value[len(scheme) + 3 :].split("/", 1)[0]
    return "https", value.split("/", 1)[0]


# -- time limits and retries -------------------------------------------------------------------------------------
def time_left_s(ctx: Any) -> float:
    deadline = getattr(ctx, "deadline", None)
    return deadline.remaining_s() if deadline is not None else float("inf")


def attempt_timeout_s(settings: SinkSettings, ctx: Any) -> float:
    """The timeout for the next request: the sink timeout, cut to what is left of the invocation."""
    left = time_left_s(ctx)
    if left < MIN_ATTEMPT_S:
        raise SinkDeliveryError("DeadlineExceeded", "no time left in this invocation to notify", retriable=False)
    return min(settings.timeout_ms / 1000.0, left)


T = TypeVar("T")


def with_retries(
    settings: SinkSettings,
    ctx: Any,
    attempt: Callable[[float], T],
    classify: Callable[[BaseException], SinkDeliveryError],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `attempt(timeout_s)` up to `settings.attempts` times while the error is retriable and time is left."""
    tries = 0
    while True:
        timeout = attempt_timeout_s(settings, ctx)
        tries += 1
        try:
            return attempt(timeout)
        except SinkDeliveryError:
            raise
        except Exception as exc:
            error = classify(exc)
        if not error.retriable or tries >= settings.attempts:
            raise error
        delay = random.uniform(0, min(1.0, 0.1 * 2**tries))  # full jitter
        if delay + MIN_ATTEMPT_S > time_left_s(ctx):
            raise error
        sleep(delay)


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
