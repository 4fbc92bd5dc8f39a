"""IMM_MAX_QPS: the most IMM calls one instance starts in any second, paced evenly.

A pacer with a burst of one (a token bucket of size 1, or GCRA): call n may start no earlier than call n-1 plus
1/qps seconds, so any one-second window holds at most `qps` starts, whatever the number of threads, and the calls
are spread out instead of sent in bursts that trip IMM's own throttling. A caller that would have to wait past its
deadline does not take a slot (`acquire` answers False): the call is not made, and the item is retried later.

    >>> pacer = Pacer(1000.0)
    >>> pacer.acquire(deadline_at=float("inf")), pacer.acquire(deadline_at=float("inf"))
    (True, True)

A dozen lines of our own instead of a rate-limiting library: the rule needed here (one shared slot schedule,
bounded by a deadline, sleeping outside the lock) is smaller than any library's configuration for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import lru_cache


class Pacer:
    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / qps
        self._clock = clock
        self._next = 0.0  # the earliest start of the next call
        self._lock = threading.Lock()

    def acquire(self, deadline_at: float, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Wait for this call's slot; False (no slot taken) when the slot would start after `deadline_at`."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            if slot > deadline_at:
                return False
            self._next = slot + self.interval
        if slot > now:
            sleep(slot - now)
        return True


@lru_cache(maxsize=4)
def pacer(qps: float) -> Pacer:
    """The instance's pacer for this limit: shared by every invocation and thread of the instance."""
    return Pacer(qps)
