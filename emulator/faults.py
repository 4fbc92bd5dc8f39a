"""Fault injection: make chosen calls fail the ways the real cloud fails, so retry and error paths get tested.

Kinds (what the function must survive: the POP gateway's throttling and 5xx answers, and what proxies do):

- `throttle`: `Throttling.User`, HTTP 400 (the POP tables) or 429 (`status=429`); `retry_after=MS` adds the
  `x-acs-retry-after` header, which makes the IMM SDK raise `ThrottlingException` instead of `ClientException`.
- `internal` (500 InternalError) and `unavailable` (503 ServiceUnavailable): JSON errors → `ServerException`.
- `error`: any status/code/message you give (`status=403, code="Forbidden.RAM"`).
- `bad_gateway`: a 502 with an HTML body, as a load balancer sends it; the SDK cannot parse it.
- `latency`: sleep `seconds` (default 1), then serve normally; lets tests exceed the SDK's read timeout.
- `drop`: close the connection without answering.
- `trickle`: send the status line and headers at once, then the body `chunk` bytes (default 1) every
  `interval_ms` (default 150), with the full body's Content-Length, so a client whose timeout is per socket read
  (urllib3's, the SDKs') keeps reading for as long as the body lasts: a 100-byte answer at 150 ms takes ~15 s,
  however short the read timeout. `headers=True` trickles the status line and headers too. By default the answer
  is the service's own (the call takes effect, as on a slow network); with `status`, `body` or `content_type`
  the given answer trickles instead and the service never sees the call. Only the connection that drew the fault
  is held (one thread per connection), and stopping the emulator cuts it off.
- `answer`: reply with exactly `status` (default 200), `content_type` (default
  `application/json;charset=utf-8`), `body` (bytes sent as they are; a str is sent as UTF-8; any other value
  as compact JSON; `body_b64=` for the CLI) and optional `extra_headers` (a dict), without calling the service. For
  answers a real service would never give: a 200 `{}`, `null`, `[]`, `"x"` or `not json` from IMM, a GetBatch
  whose `Batch.State` is missing, empty or `Exploded`, a 201 without `MessageId` from MNS.

Faults are scripted (`inject`: the next `count` matching calls) or random (`random`: each call fails with
probability `rate`, reproducible with `seed`). Scripted faults win over random ones.
"""

from __future__ import annotations

import base64
import json
import random as _random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.server import Request, Response, Trickle

KINDS = ("throttle", "internal", "unavailable", "error", "bad_gateway", "latency", "drop", "trickle", "answer")
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
    "slowloris": "trickle",
    "respond": "answer",
    "reply": "answer",
}
_TEXT_OPTIONS = frozenset({"body", "body_b64", "content_type", "code", "message", "service"})
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
        self._quota: _Bucket | None = None
        self.injected: list[InjectedFault] = []

    # -- configuration ---------------------------------------------------------------------------------------
    def inject(self, action: str, kind: str, count: int | None = 1, *, service: str | None = None, **opts: Any) -> None:
        """Fail the next `count` calls of `action` ("*" = any; count None = until `clear`) with `kind`.

        Options: throttle(status=400|429, retry_after=ms, code, message), error(status, code, message),
        internal/unavailable(message), bad_gateway(status=502), latency(seconds=1.0),
        trickle(interval_ms=150, headers=False, chunk=1, [status, body, content_type]),
        answer(status=200, body=b"", content_type="application/json;charset=utf-8", extra_headers={}, body_b64).

            emu.faults.inject("GetBatch", "trickle", interval_ms=150)
            emu.faults.inject("UpdateBatch", "answer", status=200, body=b"{}")
        """
        name = canonical_kind(kind)
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for unlimited)")
        _check_options(name, opts)
        rule = _Rule(action, name, dict(opts), count, service)
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

    def quota(self, qps: float | None, *, service: str = "imm", burst: float | None = None) -> None:
        """API flow control like the cloud gateway's: every call to `service` takes a token from a bucket that
        holds `burst` tokens (default: one second's worth, `qps`) and refills at `qps` per second; a call that
        finds it empty is answered `Throttling.User` (HTTP 429, IMM's throttling code) and counted in
        `injected` as kind "throttle". `quota(None)` turns it off.

            emu.faults.quota(50)            # IMM answers at most 50 calls/s sustained, bursts of 50
        """
        with self._lock:
            if qps is None:
                self._quota = None
                return
            if qps <= 0:
                raise ValueError("qps must be > 0")
            size = float(burst if burst is not None else qps)
            self._quota = _Bucket(service, float(qps), size, size, time.monotonic())

    def clear(self) -> None:
        """Remove every scripted and random fault and the quota (the record of injected faults is kept; see
        `reset_counts`)."""
        with self._lock:
            self._rules.clear()
            self._rate = 0.0
            self._random_kinds = []
            self._quota = None

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

        COUNT is a number or `*` (every call); values that look like numbers become numbers and `true`/`false`
        booleans, except for the text options (body, content_type, code, message, service), kept as written. A
        body with a comma needs `body_b64=`: `UpdateBatch:answer:1:status=200,body_b64=eyJhIjoxLCJiIjoyfQ==`.
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
                key = key.strip()
                opts[key] = value.strip() if key in _TEXT_OPTIONS else _number_or_str(value.strip())
        self.inject(parts[0], parts[1], count, **opts)

    # -- the hook --------------------------------------------------------------------------------------------
    def apply(self, service: Any, action: str, request: Request) -> Response | None:
        """A fault response for this call, or None to let the service answer (after any injected latency)."""
        chosen: tuple[str, dict[str, Any]] | None = None
        with self._lock:
            # The quota first: a call over it is refused at the gateway, before any scripted behaviour.
            if self._quota is not None and self._quota.service == service.name:
                if not self._quota.take(time.monotonic()):
                    chosen = ("throttle", {"status": 429})
            for rule in self._rules if chosen is None else ():
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


@dataclass
class _Bucket:
    """A token bucket (the quota): `tokens` of `size`, refilled at `rate` per second since `at`."""

    service: str
    rate: float
    size: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def _check_options(kind: str, opts: dict[str, Any]) -> None:
    """Refuse option values that could only fail later, inside a request thread."""
    if kind == "trickle":
        if float(opts.get("interval_ms", 150)) < 0 or int(opts.get("chunk", 1)) < 1:
            raise ValueError("trickle needs interval_ms >= 0 and chunk >= 1")
    if kind in ("trickle", "answer"):
        if "body" in opts and "body_b64" in opts:
            raise ValueError("give body or body_b64, not both")
        _answer_body(opts)  # raises on a body that cannot be encoded
        int(opts.get("status", 200))
        if not isinstance(opts.get("extra_headers") or {}, dict):
            raise ValueError("extra_headers must be a dict")


def _answer_body(opts: dict[str, Any]) -> bytes:
    if "body_b64" in opts:
        return base64.b64decode(str(opts["body_b64"]), validate=True)
    body = opts.get("body", b"")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _answer(opts: dict[str, Any]) -> Response:
    headers = {"Content-Type": str(opts.get("content_type", "application/json;charset=utf-8"))}
    headers.update({str(k): str(v) for k, v in (opts.get("extra_headers") or {}).items()})
    return Response(int(opts.get("status", 200)), headers, _answer_body(opts))


def _render(service: Any, kind: str, opts: dict[str, Any]) -> Response | None:
    if kind == "answer":
        return _answer(opts)
    if kind == "trickle":
        trickle = Trickle(
            interval=float(opts.get("interval_ms", 150)) / 1000.0,
            headers=bool(opts.get("headers", False)),
            chunk=int(opts.get("chunk", 1)),
        )
        if any(k in opts for k in ("status", "body", "body_b64", "content_type")):
            response = _answer(opts)
            response.trickle = trickle
            return response
        return Response(0, trickle=trickle, serve=True)
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
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
