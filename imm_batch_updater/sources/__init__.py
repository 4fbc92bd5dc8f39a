"""Trigger adapters. `detect` picks the one whose event shape matches; a direct invocation is the fallback.

Order matters: the most specific shapes are checked first, and the direct invocation (the document itself) last.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from imm_batch_updater.sources.base import EventSource

NOT_JSON = object()  # marker: the event bytes are not JSON (a direct invocation with a bad body)


def event_sources() -> list[EventSource]:
    from imm_batch_updater.sources.direct import DirectSource

    found: list[EventSource] = []
    for module, cls in _ADAPTERS:
        name = f"imm_batch_updater.sources.{module}"
        if importlib.util.find_spec(name) is not None:
            found.append(getattr(importlib.import_module(name), cls)())
    return [*found, DirectSource()]


# (module, class) of the event-trigger adapters, most specific first.
_ADAPTERS = [
    ("async_destination", "AsyncDestinationSource"),
    ("mns_queue", "MnsQueueSource"),
    ("oss", "OssSource"),
    ("mns_topic", "MnsTopicSource"),
    ("timer", "TimerSource"),
]

_cache: list[EventSource] | None = None


def detect(event: Any) -> EventSource:
    global _cache
    if _cache is None:
        _cache = event_sources()
    if event is NOT_JSON:
        return _cache[-1]
    return next(s for s in _cache if s.matches(event))
