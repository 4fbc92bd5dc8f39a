"""Retry timing: exponential backoff with full jitter, bounded by attempts and by the invocation's deadline.

>>> policy = RetryPolicy(max_attempts=4, base_ms=200, cap_ms=5000)
>>> 0 <= policy.delay_s(attempt=3, retry_after_ms=None) <= 0.8
True
>>> policy.delay_s(attempt=1, retry_after_ms=1500) >= 1.5   # IMM's x-acs-retry-after is honoured
True
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

# Stop this long before FC's own timeout, so the outcome is still reported (and logged) by us.
MIN_MARGIN_S = 0.5
MAX_MARGIN_S = 5.0
MARGIN_FRACTION = 0.1


class Deadline:
    """The moment by which this invocation must have finished its IMM calls."""

    def __init__(self, budget_s: float, clock: type[time.monotonic] | None = None) -> None:
        self._clock = clock or time.monotonic
        self.budget_s = budget_s
        self.expires_at = self._clock() + budget_s

    @classmethod
    def for_timeout(cls, timeout_s: float) -> Deadline:
        """The function timeout minus a safety margin (10 %, at least 0.5 s and at most 5 s)."""
        margin = min(MAX_MARGIN_S, max(MIN_MARGIN_S, timeout_s * MARGIN_FRACTION))
        return cls(max(0.1, timeout_s - margin))

    def remaining_s(self) -> float:
        return max(0.0, self.expires_at - self._clock())

    def expired(self) -> bool:
        return self.remaining_s() <= 0.0


_SHARED_RNG = random.Random()  # seeding a new Random per invocation reads os.urandom: share one per instance


@dataclass
class RetryPolicy:
    max_attempts: int = 4
    base_ms: int = 200
    cap_ms: int = 5000
    rng: random.Random = field(default=_SHARED_RNG, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def delay_s(self, attempt: int, retry_after_ms: int | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.cap_ms, self.base_ms * (2 ** (attempt - 1)))
        with self._lock:  # random.Random is not documented as thread-safe
            jitter_ms = self.rng.uniform(0, ceiling)
        if retry_after_ms:
            return max(float(retry_after_ms), jitter_ms) / 1000.0
        return jitter_ms / 1000.0


class RetryBudget:
    """Retries left for the whole invocation: when IMM is down or throttling hard, a delivery of many documents
    must not multiply the load (a retry storm). The platform retries the delivery later instead."""

    def __init__(self, retries: int) -> None:
        self._left = retries
        self._lock = threading.Lock()

    @classmethod
    def for_delivery(cls, documents: int, max_attempts: int) -> RetryBudget:
        """Enough for one document's three calls (GetBatch, UpdateBatch, ResumeBatch) to use every attempt they
        have, so a single-document delivery always gets the full IMM_MAX_ATTEMPTS per call (DESIGN: at least 4 by
        default), plus 2 retries for each further document."""
        return cls(3 * (max_attempts - 1) + 2 * max(0, documents - 1))

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True
