"""The one retry helper: every call to a peer (IMM, OSS, MNS, a sink) goes through `call`.

- Each attempt is bounded by the invocation's deadline, however slowly the peer answers (`watchdog.guard`); a
  retriable failure at or past the deadline is `DeadlineExceeded`, whether the watchdog or the SDK's own timeout
  (cut to the time left) ended the call.
- Only a `CallError` with `retriable=True` is tried again (network errors, timeouts, 5xx, throttling: the caller's
  classifier decides); anything else propagates at once.
- Exponential backoff with full jitter (`random.uniform(0, min(cap, base * 2**(n-1)))`, AWS's "full jitter"), or
  the peer's own retry-after when it is longer; no attempt starts with less than MIN_ATTEMPT_S left, and a wait
  that would not leave that much gives up instead (the platform delivers the event again later).
- A `RetryBudget` shared by a whole delivery caps its retries, so one throttling IMM is not hit by a retry storm.

Our own small loop rather than tenacity: tenacity's machinery costs ~8 us per call (measured: a successful call
through a shared `tenacity.Retrying` takes 7.8 us more than a direct one, ~13 us with its per-call state), and a
warm update has ~80 us in all for the function's own work (bench/README.md); the rules above fit in 30 lines.

    >>> policy = RetryPolicy(max_attempts=4, base_ms=200, cap_ms=5000)
    >>> 0 <= policy.delay_s(attempt=3, retry_after_ms=None) <= 0.8
    True
    >>> policy.delay_s(attempt=1, retry_after_ms=1500) >= 1.5   # a peer's retry-after is honoured
    True
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from imm_batch_updater import watchdog

# Stop this long before FC's own timeout, so the outcome is still reported (and logged) by us.
MIN_MARGIN_S = 0.5
MAX_MARGIN_S = 5.0
MARGIN_FRACTION = 0.1
MIN_ATTEMPT_S = 0.2  # no attempt starts with less time than this left
# With optional sinks configured, the calls made before the report (IMM, OSS, the work queue) stop this much before
# the deadline, so the outcomes (the dead letters above all) still reach the sinks when a peer is slow: a tenth of
# the function timeout, at least 1 s, at most 5 s, and never more than half the deadline's budget (sink_reserve_s).
# Measured against the emulator: one sink delivery takes 1-3 ms, all three sinks ~7 ms (100 outcomes: ~125 ms, the
# MNS topic sink sending one message each); the first on an instance imports the sink's SDK: ~120 ms for all three
# (FC 3.0's alone ~0.55 s before the IMM SDK it shares code with is loaded). The 1 s floor covers that and one
# attempt of each sink over a fresh TLS connection to an in-region endpoint (README "Time budget").
SINK_RESERVE_FRACTION = 0.1
MIN_SINK_RESERVE_S = 1.0
MAX_SINK_RESERVE_S = 5.0

T = TypeVar("T")


class Deadline:
    """The moment (time.monotonic seconds) by which this invocation must have finished its calls."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.expires_at = time.monotonic() + budget_s

    @classmethod
    def for_timeout(cls, timeout_s: float) -> Deadline:
        """The function timeout minus a safety margin (10 %, at least 0.5 s and at most 5 s)."""
        # Comparisons instead of min() and max(), which cost about 80 ns a call on CPython 3.11 (this runs on
        # every invocation, attempt_timeouts on every IMM call: bench/README.md). The same values.
        margin = timeout_s * MARGIN_FRACTION
        margin = MIN_MARGIN_S if margin < MIN_MARGIN_S else MAX_MARGIN_S if margin > MAX_MARGIN_S else margin
        budget = timeout_s - margin
        return cls(budget if budget > 0.1 else 0.1)

    def before(self, seconds: float) -> Deadline:
        """A deadline `seconds` earlier than this one: what lies between is set aside for what runs after it."""
        earlier = Deadline.__new__(Deadline)
        earlier.budget_s = self.budget_s - seconds
        earlier.expires_at = self.expires_at - seconds
        return earlier

    def remaining_s(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())


def sink_reserve_s(timeout_s: float, budget_s: float) -> float:
    """The share of an invocation set aside for its optional sinks: a tenth of the function timeout `timeout_s`, at
    least 1 s, at most 5 s, and at most half of `budget_s` (the deadline's), so the calls before keep the rest.

    >>> sink_reserve_s(3, Deadline.for_timeout(3).budget_s), sink_reserve_s(60, Deadline.for_timeout(60).budget_s)
    (1.0, 5.0)
    """
    reserve = timeout_s * SINK_RESERVE_FRACTION
    if reserve < MIN_SINK_RESERVE_S:
        reserve = MIN_SINK_RESERVE_S
    elif reserve > MAX_SINK_RESERVE_S:
        reserve = MAX_SINK_RESERVE_S
    return reserve if reserve < budget_s / 2 else budget_s / 2


class CallError(Exception):
    """A call to a peer failed. `code` and `message` never hold key material, bodies or headers.

    `retriable`: worth another attempt (now, or by the platform later); `retry_after_ms`: the peer asked to wait.
    """

    def __init__(
        self, code: str, message: str, *, retriable: bool, retry_after_ms: int | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retriable = retriable
        self.retry_after_ms = retry_after_ms
        self.extra = extra


def deadline_exceeded(what: str) -> CallError:
    return CallError("DeadlineExceeded", f"no time left in this invocation {what}", retriable=True)


_SHARED_RNG = random.Random()  # seeding a new Random per call reads os.urandom: share one per instance


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_ms: int = 200
    cap_ms: int = 5000
    rng: random.Random = field(default=_SHARED_RNG, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def delay_s(self, attempt: int, retry_after_ms: int | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.cap_ms, self.base_ms * (2 ** (attempt - 1)))
        with self._lock:  # random.Random is not documented as thread-safe
            jitter_ms = self.rng.uniform(0, ceiling)
        if retry_after_ms:
            return max(float(retry_after_ms), jitter_ms) / 1000.0
        return jitter_ms / 1000.0


class RetryBudget:
    """Retries left for a whole delivery: when a peer is down or throttling hard, a delivery of many documents must
    not multiply the load (a retry storm). The platform retries the delivery later instead."""

    def __init__(self, retries: int) -> None:
        self._left = retries
        self._lock = threading.Lock()

    @classmethod
    def for_delivery(cls, documents: int, max_attempts: int) -> RetryBudget:
        """Enough for one document's three calls (GetBatch, UpdateBatch, ResumeBatch) to use every attempt they
        have, so a single-document delivery always gets IMM_MAX_ATTEMPTS per call (the contract: at least 4 by default),
        plus 2 retries for each further document."""
        return cls(3 * (max_attempts - 1) + 2 * max(0, documents - 1))

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def call(
    attempt: Callable[[float], T],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    budget: RetryBudget | None = None,
    what: str = "to call the service",
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """`attempt(seconds_left)`'s result and the number of attempts it took; raises the last CallError (with
    `attempts_of`) or whatever else `attempt` raised. `seconds_left` is what remains of the deadline when the
    attempt starts: use it to cut the SDK's own timeouts."""
    attempts = 0
    while True:
        left = deadline.expires_at - time.monotonic()
        if left < MIN_ATTEMPT_S:
            raise _counted(deadline_exceeded(what), attempts)
        attempts += 1
        watch = watchdog.watch(deadline)
        try:
            result = attempt(left)
        except CallError as exc:
            # A retriable failure once the deadline has passed is the deadline's doing, whether the watchdog ended
            # the call or the SDK's own timeout did (the callers cut it to `left`, so it fires at the deadline too;
            # under load it can beat the watchdog's thread): report the same code either way.
            ended = watch.fired or (exc.retriable and time.monotonic() >= deadline.expires_at)
            error = deadline_exceeded(what) if ended else exc
        except Exception:
            if watch.fired:  # the watchdog broke the connection: say so, not what the SDK made of it
                raise _counted(deadline_exceeded(what), attempts) from None
            raise
        else:
            if not watch.fired:
                return result, attempts
            # An answer cut short can still parse (a 200 whose headers were cut has no body to wait for): never
            # take it for a success. At worst a call that had just completed is reported failed.
            error = deadline_exceeded(what)
        finally:
            watchdog.unwatch(watch)
        if not error.retriable or attempts >= policy.max_attempts:
            raise _counted(error, attempts)
        delay = 0.0 if error.extra.get("immediate") else policy.delay_s(attempts, error.retry_after_ms)
        # Give up now if the wait would leave no time for the next attempt; the platform retries later.
        if delay + MIN_ATTEMPT_S > deadline.remaining_s() or (budget is not None and not budget.take()):
            raise _counted(error, attempts)
        sleep(delay)


def _counted(error: CallError, attempts: int) -> CallError:
    error.extra["attempts"] = attempts
    return error


def attempts_of(error: CallError) -> int:
    """How many attempts `call` made before it raised `error`."""
    return int(error.extra.get("attempts", 0))
