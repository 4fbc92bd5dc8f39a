"""OSS trigger through EventBridge (FC 3.0 "EventBridge-based OSS trigger"): one CloudEvent per invocation::

    {"id": "69B1…", "source": "acs.oss", "specversion": "1.0", "type": "oss:ObjectCreated:PutObject",
     "subject": "acs:oss:cn-hangzhou:1649…:updates/requests/x.json", "time": "2026-03-11T05:40:45.000Z",
     "aliyuneventbusname": "default", "aliyunregionid": "cn-hangzhou",
     "data": {"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
              "oss": {"bucket": {"name": "updates"}, "object": {"key": "requests/x.json", "eTag": "688A…",
                                                                "size": 122}}}}

In fc3 it is `triggerType: eventbridge` with `eventSourceConfig.eventSourceType: Default` and an
`eventRuleFilterPattern` such as `{"source":["acs.oss"],"type":["oss:ObjectCreated:PutObject"]}` (there is no
`OSS` event source type). `data` is the native OSS trigger's record (`eventName` without the `oss:` prefix that
`type` has), so it is handled by `OssSource`'s record rules, unchanged: only finished objects are read, the key's
readings, the size limit, the region check, the errors, and the message id `oss://bucket/key@eTag` (the same as
the native trigger's for the same upload). Pointers are relative to the event: `/data/oss/object/key`.

- Recognised by `source == "acs.oss"` with a `specversion` (a CloudEvent). MNS queue CloudEvents
  (`mns:Queue:SendMessage`) are detected first and never reach this source.
- `type` `oss:Object…` that is not a finished object (upload progress, `AppendObject`, `PutSymlink`,
  `ObjectRemoved:*`, ...) produces no message and no read, like the native trigger's records. Any other `type` from
  `acs.oss` (`oss:BucketCreated:PutBucket`, `oss:ActionTrail:*`, `oss:CloudMonitor:*`: a filter pattern that lets
  them through) is `invalid` at `/type`. `data` must be an object whose `eventName` is the `type` without `oss:`
  (else `invalid` at `/data` or `/data/eventName`), checked before the type decides: a `type` saying removal over
  a `data` saying upload is never dropped unreported.
- FC pushes Default-source events one per invocation ("event-driven" mode; batch push, "event-streaming", is only
  for MNS, RocketMQ, RabbitMQ, Kafka, MQTT and DTS sources). A JSON array of these CloudEvents is nevertheless taken
  like the MNS queue's batch push (pointers `/0/data/…`), each item on its own; an item that is not an `acs.oss`
  CloudEvent is `invalid` at `/N`.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources.base import Delivery, Message, SourceFailure, envelope_failure, event_or_batch, first_str
from imm_batch_updater.sources.oss import FINISHED_OBJECT_EVENTS, OssSource
from imm_batch_updater.strictjson import Decoded

EVENT_SOURCE = "acs.oss"
TYPE_PREFIX = "oss:"


def _is_oss_cloud_event(item: Any) -> bool:
    return isinstance(item, dict) and item.get("source") == EVENT_SOURCE and "specversion" in item


class OssEventBridgeSource(OssSource):
    name = "oss_eventbridge"
    markers = frozenset({"specversion"})  # a dict event without any of these keys is not this source's

    def matches(self, event: Any) -> bool:
        return event_or_batch(event, _is_oss_cloud_event)

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        value = event.value
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        messages: list[Message] = []
        reads: dict[tuple[str, str, str], Any] = {}  # one read per (bucket, key, eTag), as in `OssSource.receive`
        for i, item in items:
            messages.extend(self._cloud_event(item, "" if i is None else f"/{i}", event, ctx, reads))
        return Delivery(messages)

    def _cloud_event(
        self, item: Any, base: str, event: Decoded, ctx: Context, reads: dict[tuple[str, str, str], Any]
    ) -> list[Message]:
        event_id = first_str(item.get("id")) if isinstance(item, dict) else None

        def fail(text: str, where: str) -> list[Message]:
            failure = SourceFailure(Status.INVALID, "InvalidEvent", text, base + where)
            return [Message.of(self.name, event_id, failure)]

        data_path = f"{base}/data"
        around = tuple(
            f for f in event.faults_under(base) if not (f[0] == data_path or f[0].startswith(data_path + "/"))
        )
        if around:  # this CloudEvent's envelope holds a value that can never be sent (a duplicate key, ...)
            return [Message.of(self.name, event_id, envelope_failure(around, "the CloudEvent"))]
        if not _is_oss_cloud_event(item):
            return fail(f"not a CloudEvent from {EVENT_SOURCE}", "")
        kind = item.get("type")
        if not (isinstance(kind, str) and kind.startswith(TYPE_PREFIX + "Object")):
            text = f"the CloudEvent's type is not an OSS object event ({TYPE_PREFIX}ObjectCreated:…)"
            return fail(text, "/type")
        name = kind[len(TYPE_PREFIX) :]
        # `type` and `data` must agree before either decides anything: an upload whose `type` says removal (or
        # upload progress) is never dropped unreported.
        own = [f for f in event.faults_under(data_path) if f[0] in (data_path, f"{data_path}/eventName")]
        if own:  # `data` or its eventName can never be sent (a duplicate key, a lone surrogate): say so, not more
            where, fault = own[0]
            failure = SourceFailure(
                Status.INVALID, fault.code, f"the CloudEvent holds {fault.reason} at {where}", where
            )
            return [Message.of(self.name, event_id, failure)]
        data = item.get("data")
        if not isinstance(data, dict):
            return fail("the CloudEvent has no data object", "/data")
        if data.get("eventName") != name:
            return fail("data.eventName is not the CloudEvent's type without oss:", "/data/eventName")
        if name not in FINISHED_OBJECT_EVENTS:
            return []  # upload progress, appends, symlinks, removals: no finished object to read
        return self._record(data, data_path, event, ctx, reads)
