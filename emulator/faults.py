"""Fault injection: make chosen calls fail the ways the real cloud fails, so retry and error paths get tested.

Kinds (what the function must survive, notes/imm-wire-facts.md §3.2 and §5):

- `throttle`: `Throttling.User`, HTTP 400 (the POP tables) or 429 (`status=429`); `retry_after=MS` adds the
  `x-acs-retry-after` header, which makes the IMM SDK raise `ThrottlingException` instead of `ClientException`.
- `internal` (500 InternalError) and `unavailable` (503 ServiceUnavailable): JSON errors → `ServerException`.
- `error`: any status/code/message you give (`status=403, code="Forbidden.RAM"`).
- `bad_gateway`: a 502 with an HTML body, as a load balancer sends it; the SDK cannot parse it.
- `latency`: sleep `seconds` (default 1), then serve normally; lets tests exceed the SDK's read timeout.
- `drop`: close the connection without answering.

Faults are scripted (`inject`: the next `count` matching calls) or random (`random`: each call fails with
probability `rate`, reproducible with `seed`). Scripted faults win over random ones.
"""

from __future__ import annotations

import random as _random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.server import Request, Response

KINDS = ("throttle", "internal", "unavailable", "error", "bad_gateway", "latency", "drop")
ALIASES = {
    "throttling": "throttle",
    "429": "throttle",
    "500": "internal",
    "503": "unavailable",
    "502": "bad_gateway",
    "html": "bad_gateway",
    "delay": "latency",
    "slow": "latency",
    "reset": "drop",
}
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
    b"\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)


def canonical_kind(kind: str) -> str:
    name = ALIASES.get(kind.lower(), kind.lower())
    if name not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
    return name


@dataclass
class _Rule:
    action: str  # "*" for any
    kind: str
    opts: dict[str, Any]
    remaining: int | None  # None: every matching call until cleared
    service: str | None = None

    def matches(self, service: str, action: str) -> bool:
        return (self.action in ("*", action)) and (self.service is None or self.service == service)


@dataclass
class InjectedFault:
    service: str
    action: str
    kind: str
    at: float = field(default_factory=time.time)


class FaultInjector:
    """Decides, per request, whether to fail it; `Emulator.dispatch` calls `apply` before the service runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._rate = 0.0
        self._random_kinds: list[tuple[str, dict[str, Any]]] = []
        self._random_actions: frozenset[str] = frozenset({"*"})
        self._random_service: str | None = None
        self._rng = _random.Random()
        self.injected: list[InjectedFault] = []

    # -- configuration ---------------------------------------------------------------------------------------
    def inject(self, action: str, kind: str, count: int | None = 1, *, service: str | None = None, **opts: Any) -> None:
        """Fail the next `count` calls of `action` ("*" = any; count None = until `clear`) with `kind`.

        Options: throttle(status=400|429, retry_after=ms, code, message), error(status, code, message),
        internal/unavailable(message), bad_gateway(status=502), latency(seconds=1.0).
        """
        rule = _Rule(action, canonical_kind(kind), dict(opts), count, service)
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for unlimited)")
        with self._lock:
            self._rules.append(rule)

    def random(
        self,
        rate: float,
        kinds: list[str | tuple[str, dict[str, Any]]] | tuple[str, ...] = ("throttle", "internal", "unavailable"),
        seed: int | None = None,
        *,
        actions: list[str] | tuple[str, ...] = ("*",),
        service: str | None = None,
    ) -> None:
        """Fail each call of `actions` with probability `rate`, with a kind drawn from `kinds` (seeded RNG)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        parsed = [(canonical_kind(k), {}) if isinstance(k, str) else (canonical_kind(k[0]), dict(k[1])) for k in kinds]
        if rate and not parsed:
            raise ValueError("kinds must not be empty")
        with self._lock:
            self._rate = rate
            self._random_kinds = parsed
            self._random_actions = frozenset(actions)
            self._random_service = service
            self._rng = _random.Random(seed)

    def clear(self) -> None:
        """Remove every scripted and random fault (the record of injected faults is kept; see `reset_counts`)."""
        with self._lock:
            self._rules.clear()
            self._rate = 0.0
            self._random_kinds = []

    @property
    def rate(self) -> float:
        """The probability set by `random` (0 when random faults are off)."""
        with self._lock:
            return self._rate

    def reset_counts(self) -> None:
        with self._lock:
            self.injected = []

    def pending(self) -> int:
        """Scripted faults still to fire (unlimited rules count as 1)."""
        with self._lock:
            return sum(1 if r.remaining is None else r.remaining for r in self._rules)

    def count(self, action: str | None = None, kind: str | None = None, service: str | None = None) -> int:
        """How many faults were injected, optionally only for one action / kind / service."""
        kind = canonical_kind(kind) if kind else None
        with self._lock:
            return sum(
                1
                for f in self.injected
                if (action is None or f.action == action)
                and (kind is None or f.kind == kind)
                and (service is None or f.service == service)
            )

    def add_spec(self, spec: str) -> None:
        """CLI form `ACTION:KIND[:COUNT][:key=value,...]`, e.g. `UpdateBatch:throttle:3:status=429,retry_after=1500`.

        COUNT is a number or `*` (every call); values that look like numbers become numbers.
        """
        parts = spec.split(":", 3)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"fault spec {spec!r} is not ACTION:KIND[:COUNT][:key=value,...]")
        count: int | None = 1
        if len(parts) > 2 and parts[2]:
            count = None if parts[2] in ("*", "inf") else int(parts[2])
        opts: dict[str, Any] = {}
        if len(parts) > 3 and parts[3]:
            for item in parts[3].split(","):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"fault option {item!r} is not key=value")
                opts[key.strip()] = _number_or_str(value.strip())
        self.inject(parts[0], parts[1], count, **opts)

    # -- the hook --------------------------------------------------------------------------------------------
    def apply(self, service: Any, action: str, request: Request) -> Response | None:
        """A fault response for this call, or None to let the service answer (after any injected latency)."""
        chosen: tuple[str, dict[str, Any]] | None = None
        with self._lock:
            for rule in self._rules:
                if rule.matches(service.name, action):
                    chosen = (rule.kind, rule.opts)
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    break
            if chosen is None and self._rate and self._random_applies(service.name, action):
                if self._rng.random() < self._rate:
                    chosen = self._rng.choice(self._random_kinds)
            if chosen is not None:
                self.injected.append(InjectedFault(service.name, action, chosen[0]))
        if chosen is None:
            return None
        return _render(service, *chosen)

    def _random_applies(self, service: str, action: str) -> bool:
        return ("*" in self._random_actions or action in self._random_actions) and (
            self._random_service is None or self._random_service == service
        )


def _render(service: Any, kind: str, opts: dict[str, Any]) -> Response | None:
    if kind == "latency":
        time.sleep(float(opts.get("seconds", 1.0)))
        return None
    if kind == "drop":
        return Response(0, drop=True)
    if kind == "bad_gateway":
        status = int(opts.get("status", 502))
        return Response(status, {"Content-Type": "text/html"}, BAD_GATEWAY_HTML)
    if kind == "throttle":
        headers = {}
        if opts.get("retry_after") is not None:
            headers["x-acs-retry-after"] = str(int(opts["retry_after"]))
        return service.error_response(
            int(opts.get("status", 400)),
            str(opts.get("code", "Throttling.User")),
            str(opts.get("message", "Request was denied due to user flow control.")),
            headers,
        )
    if kind == "internal":
        message = "The request processing has failed due to some unknown error."
        return service.error_response(500, "InternalError", str(opts.get("message", message)))
    if kind == "unavailable":
        message = "The request has failed due to a temporary failure of the server."
        return service.error_response(503, "ServiceUnavailable", str(opts.get("message", message)))
    return service.error_response(
        int(opts.get("status", 500)),
        str(opts.get("code", "InternalError")),
        str(opts.get("message", "Injected fault.")),
    )


def _number_or_str(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
