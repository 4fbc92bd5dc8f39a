"""IMM_MAX_QPS: the most IMM calls one instance starts in any second, paced evenly.

Calls start one after the other at least 1/qps seconds apart, measured on the moments they are actually let go
(not on a schedule a late-waking thread could fall behind), so any one-second window holds at most `qps` starts,
whatever the number of threads, and the calls are spread out instead of sent in bursts that trip IMM's own
throttling (a token bucket of size 1). The threads waiting for their turn queue on one lock; a caller whose turn
would come after its deadline does not take it (`acquire` answers False): the call is not made, and the item is
retried later by the platform.

    >>> pacer = Pacer(1000.0)
    >>> pacer.acquire(deadline_at=float("inf")), pacer.acquire(deadline_at=float("inf"))
    (True, True)

A dozen lines of our own instead of a rate-limiting library: the rule needed here (one shared pace, bounded by a
deadline) is smaller than any library's configuration for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import lru_cache

from imm_batch_updater.retry import MIN_ATTEMPT_S


class Pacer:
    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / qps
        self._clock = clock
        self._last = float("-inf")  # when the last call was let go
        self._lock = threading.Lock()

    def acquire(self, deadline_at: float, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Wait for this call's turn; False (and no turn taken) when it would come after `deadline_at`."""
        if not self._lock.acquire(timeout=min(threading.TIMEOUT_MAX, max(0.0, deadline_at - self._clock()))):
            return False
        try:
            now = self._clock()
            start = max(now, self._last + self.interval)
            if start > deadline_at:
                return False
            if start > now:
                sleep(start - now)
            self._last = self._clock()  # the moment it actually goes: a late wake-up pushes the next one back
            return True
        finally:
            self._lock.release()


@lru_cache(maxsize=4)
def pacer(qps: float) -> Pacer:
    """The instance's pacer for this limit: shared by every invocation and thread of the instance."""
    return Pacer(qps)


def fits(interval_s: float, budget_s: float) -> bool:
    """Whether calls `interval_s` apart let a document's second call (UpdateBatch after its GetBatch; a selection's
    first update after its ListBatches) start within `budget_s`, the time the invocation's IMM calls have, at least
    when the instance's pacer is idle as the invocation starts: the first call then goes at once, the second
    `interval_s` later, and no attempt starts with less than MIN_ATTEMPT_S left. When it does not fit, the second
    call can never start in any invocation of this function (a configuration error); when it fits, a refused turn
    only means the pacer was busy (throttled: a later delivery may find it idle).

    >>> fits(2.0, 55.0), fits(2.0, 2.5), fits(2.0, 1.5)   # IMM_MAX_QPS 0.5: s.yaml's 60 s; FC's 3 s; 3 s with a sink
    (True, True, False)
    """
    return interval_s <= budget_s - MIN_ATTEMPT_S
