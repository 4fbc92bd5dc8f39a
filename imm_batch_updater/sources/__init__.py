"""Trigger adapters, one module per event shape. `detect` picks the one whose shape matches the event.

Order matters: the most specific shapes first, and the direct invocation (the document itself) last: it takes
anything, so a malformed event still gets a clear `invalid`. The MNS topic's JSON format comes first of all: it
merges the publisher's message attributes into its top level, so it may carry any other trigger's keys (`type`,
`events`, `requestContext`), while its own `TopicOwner` + `Message` appear in no other trigger's event (a
CloudEvent's attribute names are lower-case). Then an async-destination record before HTTP (both have a
`requestContext`). The timer's event next: its `triggerTime` + `triggerName` are no CloudEvent's attributes (those
are lower-case), so a timer event is never taken for a CloudEvent whatever else it holds. The MNS queue's CloudEvents
(by `type`) come before OSS's through EventBridge (by `source`), so a mixed array is the queue's, and its OSS items
are `invalid` there.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.sources.async_destination import AsyncDestinationSource
from imm_batch_updater.sources.base import EventSource, NotJsonEvent
from imm_batch_updater.sources.direct import DirectSource
from imm_batch_updater.sources.http import HttpSource
from imm_batch_updater.sources.mns_queue import MnsQueueSource
from imm_batch_updater.sources.mns_topic import MnsTopicSource
from imm_batch_updater.sources.oss import OssSource
from imm_batch_updater.sources.oss_eventbridge import OssEventBridgeSource
from imm_batch_updater.sources.timer import TimerSource
from imm_batch_updater.strictjson import Decoded


class Sources:
    """This instance's adapters (the HTTP one keeps the replay memory, so they live as long as the instance)."""

    def __init__(self) -> None:
        self.http = HttpSource()
        self.direct = DirectSource()
        self.all: list[EventSource] = [
            MnsTopicSource(),
            AsyncDestinationSource(),
            self.http,
            TimerSource(),
            MnsQueueSource(),
            OssSource(),
            OssEventBridgeSource(),
            self.direct,
        ]
        self._markers = frozenset().union(*(s.markers for s in self.all))

    def detect(self, event: Decoded | NotJsonEvent) -> EventSource:
        if isinstance(event, NotJsonEvent):
            # Bytes that are not UTF-8 are not JSON; an HTTP event among them is still answered as HTTP.
            return self.http if self.http.looks_like_http(event) else self.direct
        value: Any = event.value
        if type(value) is dict and value.keys().isdisjoint(self._markers):
            return self.direct  # a document: none of the keys a trigger's event is recognised by
        return next(s for s in self.all if s.matches(value))
