"""End a blocking network call at a deadline, however slowly the peer sends.

A socket timeout bounds each read, not a call: a peer that sends one byte every 150 ms keeps `requests`,
`http.client` and every SDK built on them reading for as long as it likes (requests documents this: "timeout is
not a time limit on the entire response download"). None of the SDKs the function uses (darabonba for IMM and FC,
oss2, the MNS SDK, urllib for webhooks) offers a whole-call limit, so this module provides one for all of them:

    with guard(deadline) as watch:
        client.call(...)           # any blocking HTTP call, in this thread
    watch.fired                    # True when the deadline ended it

One watchdog thread per process sleeps until the earliest deadline of the calls in flight. When a call's deadline
passes, it finds the socket that call's thread is blocked on (the innermost frame of that thread holding a
`socket.socket`: `SSLSocket.read`, `SocketIO.readinto`, `socket.create_connection`, ...) and shuts it down, which
makes the blocked read or connect return at once with an error; the SDK then raises, and the caller, seeing
`watch.fired`, reports a `DeadlineExceeded` instead of whatever the SDK made of the broken connection. The socket
is shut down, not closed: its owner still closes it, and a pool never reuses it (the next use sees it dropped).
If the thread is not in a socket call at that moment (DNS resolution, CPU work), the watchdog tries again every
50 ms until the call ends.

The cost on the normal path is one lock and one dict insert per call; nothing is inspected unless a deadline passes.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from types import FrameType, SimpleNamespace
from typing import Protocol

RETRY_S = 0.05  # how often to look again for a socket to shut down once a call is past its deadline
_MAX_FRAMES = 40  # how deep into the blocked thread's stack to look for its socket


class HasDeadline(Protocol):
    expires_at: float  # time.monotonic() seconds


class Watch(SimpleNamespace):
    """One guarded call: `fired` says whether the watchdog ended it. (A SimpleNamespace: made by its C
    constructor, without a Python-level __init__ on every call.)"""

    deadline: float  # time.monotonic() seconds
    thread_id: int
    fired: bool
    done: bool


class _Watchdog:
    """The calls in flight and the thread that ends them. The lock guards the wake-up time: a call whose deadline
    is earlier than it wakes the watchdog; removing a call takes no lock (dict updates are atomic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # taken directly on the call path (the Condition's `with` is Python code)
        self._wake = threading.Condition(self._lock)
        self._active: dict[int, Watch] = {}
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")  # when the watchdog thread next looks at the calls in flight

    def watch(self, deadline: HasDeadline) -> Watch:
        """Start bounding this thread's blocking calls by `deadline.expires_at`; end it with `unwatch` (in a
        finally)."""
        watch = Watch(deadline=deadline.expires_at, thread_id=threading.get_ident(), fired=False, done=False)
        self._active[id(watch)] = watch
        with self._lock:  # compared under the lock: the watchdog sets its wake-up time holding it
            if watch.deadline < self._wake_at:  # earlier than the watchdog's next look: tell it
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="call-watchdog", daemon=True)
                    self._thread.start()
                self._wake_at = watch.deadline
                self._wake.notify()
        return watch

    def unwatch(self, watch: Watch) -> None:
        watch.done = True
        self._active.pop(id(watch), None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for watch in list(self._active.values()):
                    if watch.deadline <= now and not watch.done:
                        watch.fired = True
                        if not _interrupt(watch.thread_id):
                            # Not blocked on a socket right now: look again shortly, until the call ends.
                            watch.deadline = now + RETRY_S
                pending = [w.deadline for w in list(self._active.values()) if not w.done]
                self._wake_at = min(pending, default=float("inf"))
                self._wake.wait(None if not pending else max(0.0, self._wake_at - now))


def _interrupt(thread_id: int) -> bool:
    """Shut down the sockets held by the innermost frame of `thread_id` that holds any."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    depth = 0
    while frame is not None and depth < _MAX_FRAMES:
        sockets = _sockets_in(frame)
        if sockets:
            for sock in sockets:
                try:
                    # socket.socket's own shutdown, also for an SSLSocket: the TLS state belongs to the reader.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed or not connected: the call is ending anyway
            return True
        frame = frame.f_back
        depth += 1
    return False


def _sockets_in(frame: FrameType) -> list[socket.socket]:
    """The sockets a frame's locals hold, directly or as a `SocketIO` (what http.client reads through)."""
    found = []
    for value in list(frame.f_locals.values()):
        if isinstance(value, socket.socket):
            found.append(value)
        elif isinstance(value, socket.SocketIO):
            inner = getattr(value, "_sock", None)
            if isinstance(inner, socket.socket):
                found.append(inner)
    return found


_watchdog = _Watchdog()
watch = _watchdog.watch
unwatch = _watchdog.unwatch


class guard:  # noqa: N801 -- used like a function: `with guard(deadline) as watch:`
    """Bound the blocking calls made inside the `with` block (in this thread) by `deadline.expires_at`."""

    __slots__ = ("deadline", "watch")

    def __init__(self, deadline: HasDeadline) -> None:
        self.deadline = deadline

    def __enter__(self) -> Watch:
        self.watch = watch(self.deadline)
        return self.watch

    def __exit__(self, *exc: object) -> None:
        unwatch(self.watch)
