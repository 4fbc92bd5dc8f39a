"""OSS trigger: each uploaded object (`ObjectCreated:*`) holds an update document or an array of them::

    {"events": [{"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                 "oss": {"bucket": {"name": "updates"}, "object": {"key": "requests/x.json", "eTag": "688A…",
                                                                   "size": 122}}}]}

- Key: the event carries it URL-encoded, and the encoder is not documented precisely (form style `+` for a space,
  or `%20`). It is decoded with `unquote_plus` (right for both when a literal `+` arrives as `%2B`); only if that
  object does not exist are the other readings tried: `unquote` (a literal `+`), then the key exactly as sent.
  A genuinely missing object therefore costs up to three GETs; a present one costs one.
- Size: objects larger than `OSS_MAX_OBJECT_BYTES` (default: MAX_BODY_BYTES) are `invalid` without being read,
  judged by the event's `size`; the read itself is bounded too, in case that size is stale or missing.
- Other events (`ObjectRemoved:*`, `ObjectModified:*`, ...) carry no update and are ignored: they produce no
  message and no result. A delivery with nothing but ignored records answers `{"results": []}` and never raises.
- Missing object or bucket: `invalid`; access denied: `rejected`; OSS 5xx or network failure: `failed` (the
  platform retries). See `imm_batch_updater.oss_reader`.
- Message id: `oss://bucket/key@eTag` (an upload's identity: FC's retries of one event share it).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, unquote_plus

from imm_batch_updater import outcome as oc
from imm_batch_updater.oss_reader import ReadFailure
from imm_batch_updater.sources.base import Message, SourceFailure


def max_object_bytes(ctx: Any) -> int:
    raw = os.environ.get("OSS_MAX_OBJECT_BYTES", "")
    try:
        return max(1, int(raw)) if raw.strip() else ctx.settings.max_body_bytes
    except ValueError:
        return ctx.settings.max_body_bytes


def key_readings(raw_key: str) -> list[str]:
    """The object keys `raw_key` may stand for, most likely first (see the module docstring)."""
    readings: list[str] = []
    for key in (unquote_plus(raw_key), unquote(raw_key), raw_key):
        if key and key not in readings:
            readings.append(key)
    return readings


# Where in the record an `invalid` read failure points.
_POINTERS = {
    "NoSuchKey": "/oss/object/key",
    "InvalidObjectKey": "/oss/object/key",
    "NoSuchBucket": "/oss/bucket/name",
    "TooLarge": "/oss/object/size",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OssSource:
    name = "oss"

    def matches(self, event: Any) -> bool:
        records = event.get("events") if isinstance(event, dict) else None
        return isinstance(records, list) and any(
            isinstance(r, dict) and r.get("eventSource") == "acs:oss" for r in records
        )

    def messages(self, event: dict[str, Any], ctx: Any) -> list[Message]:
        out: list[Message] = []
        # One read per (bucket, key, eTag) in the event: a repeated record gets the same message (and message id),
        # which the delivery then reports as a duplicate of the first.
        reads: dict[tuple[str, str, Any], tuple[str, bytes] | ReadFailure] = {}
        for i, record in enumerate(event["events"]):
            out.extend(self._record(record, f"/events/{i}", ctx, reads))
        return out

    def _record(
        self, record: Any, path: str, ctx: Any, reads: dict[tuple[str, str, Any], tuple[str, bytes] | ReadFailure]
    ) -> list[Message]:
        def fail(status: str, code: str, text: str, where: str = "", message_id: str | None = None) -> list[Message]:
            failure = SourceFailure(status, code, text, path + where if status == oc.INVALID else "")
            return [Message(source=self.name, message_id=message_id, failure=failure)]

        if not isinstance(record, dict):
            return fail(oc.INVALID, "InvalidEvent", "an OSS event record must be an object")
        name = record.get("eventName")
        if not isinstance(name, str):
            return fail(oc.INVALID, "InvalidEvent", "the record has no eventName", "/eventName")
        if not name.startswith("ObjectCreated:"):
            return []  # removals and metadata changes carry no update
        oss = _dict(record.get("oss"))
        bucket = _dict(oss.get("bucket")).get("name")
        obj = _dict(oss.get("object"))
        raw_key = obj.get("key")
        if not isinstance(bucket, str) or not bucket:
            return fail(oc.INVALID, "InvalidEvent", "the record names no bucket", "/oss/bucket/name")
        if not isinstance(raw_key, str) or not key_readings(raw_key):
            return fail(oc.INVALID, "InvalidEvent", "the record names no object key", "/oss/object/key")
        etag = obj.get("eTag")
        suffix = f"@{etag}" if isinstance(etag, str) and etag else ""
        readings = key_readings(raw_key)
        message_id = f"oss://{bucket}/{readings[0]}{suffix}"
        limit = max_object_bytes(ctx)
        size = obj.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size > limit:
            text = f"the object is {size} bytes; the limit is {limit} (OSS_MAX_OBJECT_BYTES)"
            return fail(oc.INVALID, "TooLarge", text, "/oss/object/size", message_id)
        region = record.get("region")
        found = reads.get((bucket, raw_key, suffix))
        if found is None:
            region = region if isinstance(region, str) else None
            found = reads[(bucket, raw_key, suffix)] = _read_first(ctx.oss_reader(), bucket, readings, region, limit)
        if isinstance(found, ReadFailure):
            return fail(found.status, found.code, found.message, _POINTERS.get(found.code, ""), message_id)
        key, body = found
        return [Message(source=self.name, message_id=f"oss://{bucket}/{key}{suffix}", body=body)]


def _read_first(
    reader: Any, bucket: str, readings: list[str], region: str | None, limit: int
) -> tuple[str, bytes] | ReadFailure:
    """(key, bytes) of the first reading of the key that exists, else the ReadFailure that ended the search."""
    key, rest = readings[0], readings[1:]
    try:
        return key, reader.read(bucket, key, region, limit)
    except ReadFailure as exc:
        if exc.code == "NoSuchKey" and rest:
            return _read_first(reader, bucket, rest, region, limit)  # the next reading of the encoded key
        return exc
