"""OSS trigger: each uploaded object (`ObjectCreated:*`) holds an update document or an array of them::

    {"events": [{"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                 "oss": {"bucket": {"name": "updates"}, "object": {"key": "updates/x.json", "eTag": "688A…",
                                                                   "size": 122}}}]}

- The key in the event is URL-encoded; it is decoded once with `unquote_plus` (OSS notifications encode a space
  as `+`, and a literal `+` as `%2B`), and oss2 encodes it again for the request.
- Objects larger than `OSS_MAX_OBJECT_BYTES` (default: MAX_BODY_BYTES) are `invalid` without being read; the read
  itself is bounded too, in case the event's size is stale.
- Other events (`ObjectRemoved:*`, `ObjectModified:*`) carry no update and are skipped: they get no result.
- Missing object: `invalid`; access denied: `rejected`; OSS 5xx or network failure: `failed` (the platform retries).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote_plus

from imm_batch_updater import outcome as oc
from imm_batch_updater.sources.base import Message, SourceFailure


def _max_bytes(ctx: Any) -> int:
    raw = os.environ.get("OSS_MAX_OBJECT_BYTES", "")
    try:
        return max(1, int(raw)) if raw.strip() else ctx.settings.max_body_bytes
    except ValueError:
        return ctx.settings.max_body_bytes


class OssSource:
    name = "oss"

    def matches(self, event: Any) -> bool:
        records = event.get("events") if isinstance(event, dict) else None
        return (
            isinstance(records, list)
            and bool(records)
            and any(isinstance(r, dict) and r.get("eventSource") == "acs:oss" for r in records)
        )

    def messages(self, event: dict[str, Any], ctx: Any) -> list[Message]:
        out: list[Message] = []
        for i, record in enumerate(event["events"]):
            out.extend(self._record(record, f"/events/{i}", ctx))
        return out

    def _record(self, record: Any, path: str, ctx: Any) -> list[Message]:
        def fail(status: str, code: str, text: str, where: str = "", message_id: str | None = None) -> list[Message]:
            failure = SourceFailure(status, code, text, path + where if status == oc.INVALID else "")
            return [Message(source=self.name, message_id=message_id, failure=failure)]

        if not isinstance(record, dict):
            return fail(oc.INVALID, "InvalidEvent", "an OSS event record must be an object")
        name = record.get("eventName")
        if not isinstance(name, str) or not name.startswith("ObjectCreated:"):
            return []  # removals and metadata changes carry no update
        oss = record.get("oss") if isinstance(record.get("oss"), dict) else {}
        bucket = (oss.get("bucket") or {}).get("name") if isinstance(oss.get("bucket"), dict) else None
        obj = oss.get("object") if isinstance(oss.get("object"), dict) else {}
        raw_key = obj.get("key")
        if not isinstance(bucket, str) or not bucket:
            return fail(oc.INVALID, "InvalidEvent", "the record names no bucket", "/oss/bucket/name")
        if not isinstance(raw_key, str) or not raw_key:
            return fail(oc.INVALID, "InvalidEvent", "the record names no object key", "/oss/object/key")
        key = unquote_plus(raw_key)
        etag = obj.get("eTag")
        message_id = f"oss://{bucket}/{key}" + (f"@{etag}" if isinstance(etag, str) and etag else "")
        limit = _max_bytes(ctx)
        size = obj.get("size")
        if isinstance(size, int) and size > limit:
            text = f"the object is {size} bytes; the limit is {limit} (OSS_MAX_OBJECT_BYTES)"
            return fail(oc.INVALID, "TooLarge", text, "/oss/object/size", message_id)
        region = record.get("region") if isinstance(record.get("region"), str) else None
        from imm_batch_updater.oss_reader import ReadFailure

        try:
            body = ctx.oss_reader().read(bucket, key, region, limit)
        except ReadFailure as exc:
            where = "/oss/object/key" if exc.status == oc.INVALID else ""
            return fail(exc.status, exc.code, exc.message, where, message_id)
        return [Message(source=self.name, message_id=message_id, body=body)]
