"""OSS trigger: each uploaded object holds an update document or an array of them::

    {"events": [{"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                 "oss": {"bucket": {"name": "updates"}, "object": {"key": "requests/x.json", "eTag": "688A…",
                                                                   "size": 122}}}]}

- Only events that mean a finished object are read: `ObjectCreated:PutObject`, `PostObject`, `CopyObject` and
  `CompleteMultipartUpload`. Upload progress (`InitiateMultipartUpload`, `UploadPart`, `UploadPartCopy`: the key
  still holds its previous content), `AppendObject` (an object still growing), `PutSymlink`, `ObjectRemoved:*`
  and anything else produce no message and no result, and are never read. A delivery of nothing but ignored
  records answers `{"results": []}` and never raises.
- Key: the event carries it URL-encoded, and the encoder is not documented precisely (form style `+` for a space,
  or `%20`). It is decoded with `unquote_plus` (right for both when a literal `+` arrives as `%2B`); only if that
  object does not exist are the other readings tried: `unquote` (a literal `+`), then the key exactly as sent.
  A genuinely missing object therefore costs up to three GETs; a present one costs one. An object found whose
  ETag is not the record's `eTag` may be another object (a key sent unencoded, `a+b.json` read as `a b.json`
  while both exist): the later readings are looked up too, and the one holding the record's ETag is read, else
  the first found (the object was overwritten since: up to three GETs). A reading no object can
  be named (a leading / or \\, over 1,023 long) is never requested: OSS answers it 400 InvalidObjectName, not
  NoSuchKey. A key with no other reading is `invalid` (InvalidObjectName). Nor is `.` or `..`: OSS can
  hold them, but HTTP clients drop those path segments (`invalid` InvalidObjectKey when no other reading is left).
- Size: objects larger than `OSS_MAX_OBJECT_BYTES` (default: MAX_BODY_BYTES) are `invalid` without being read,
  judged by the event's `size`; the read itself is bounded too, in case that size is stale or missing.
- Missing object or bucket: `invalid`; access denied: `rejected`; OSS 5xx or network failure: `failed` (the
  platform retries). See `imm_batch_updater.oss_reader`.
- Region: the record's `region` (the bucket's) names the OSS host read with the role's keys (without
  OSS_ENDPOINT), so it must be a region id (`cn-hangzhou`); anything else is `invalid` at `/events/N/region`,
  never read and never echoed (missing or empty: the function's region).
- Message id: `oss://bucket/key@eTag` (an upload's identity: FC's retries of one event share it), bounded like
  every message id (`base.bounded_id`): the eTag is the sender's text, and a long one is cut to a digest.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, unquote_plus

from imm_batch_updater.context import REGION_ID, Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources._body import decode_body
from imm_batch_updater.sources.base import Delivery, EventTrigger, Message, SourceFailure, envelope_failure
from imm_batch_updater.strictjson import Decoded

_RECORD = re.compile(r"/events/[0-9]+(?:/|$)")  # a fault inside a record: that record's own failure
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")  # OSS bucket naming rules (also a Source's bucket)

# The events that mean "this key now holds a complete new object" (OSS event notification docs).
FINISHED_OBJECT_EVENTS = frozenset(
    {
        "ObjectCreated:PutObject",
        "ObjectCreated:PostObject",
        "ObjectCreated:CopyObject",
        "ObjectCreated:CompleteMultipartUpload",
    }
)


MAX_OBJECT_NAME = 1023  # OSS object naming conventions


def is_object_name(key: str) -> bool:
    """Whether OSS can hold an object named `key`: 1 to 1,023 long, not starting with / or \\ (OSS object naming
    conventions). OSS answers a request for any other name 400 InvalidObjectName, never NoSuchKey. The naming
    page counts bytes, the error pages characters: only names too long either way are ruled out here."""
    return 0 < len(key) <= MAX_OBJECT_NAME and not key.startswith(("/", "\\"))


# Names OSS can hold that no HTTP client requests as named: oss2 sends a key as one path segment (a / in it is
# encoded), and requests/urllib3 remove the dot segments "." and ".." from a URL's path (RFC 3986, 5.2.4), so the
# read goes to the bucket's root, signed for the object, and OSS refuses it (403 SignatureDoesNotMatch): no retry
# and no permission can change that.
DOT_SEGMENTS = frozenset({".", ".."})


def is_requestable(key: str) -> bool:
    """Whether the object `key` names can be requested: `is_object_name`, and not a dot segment."""
    return is_object_name(key) and key not in DOT_SEGMENTS


def key_readings(raw_key: str) -> list[str]:
    """The object keys `raw_key` may stand for, most likely first (see the module docstring); readings that no
    object can be named (`is_object_name`) are left out: OSS would refuse them rather than look them up; so are the
    names no request can carry (`DOT_SEGMENTS`)."""
    readings: list[str] = []
    for key in _decodings(raw_key):
        if is_requestable(key) and key not in readings:
            readings.append(key)
    return readings


def _decodings(raw_key: str) -> tuple[str, str, str]:
    """Every way the event's key may be encoded, most likely first, before any is ruled out."""
    return unquote_plus(raw_key), unquote(raw_key), raw_key


# Where in the record an `invalid` read failure points.
_POINTERS = {
    "NoSuchKey": "/oss/object/key",
    "InvalidObjectKey": "/oss/object/key",
    "InvalidObjectName": "/oss/object/key",
    "NoSuchBucket": "/oss/bucket/name",
    "TooLarge": "/oss/object/size",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OssSource(EventTrigger):
    name = "oss"
    markers = frozenset({"events"})  # a dict event without any of these keys is not this source's

    def matches(self, event: Any) -> bool:
        records = event.get("events") if isinstance(event, dict) else None
        return isinstance(records, list) and any(
            isinstance(r, dict) and r.get("eventSource") == "acs:oss" for r in records
        )

    def receive(self, event: Decoded, ctx: Context) -> Delivery:
        around = tuple(f for f in event.faults if not _RECORD.match(f[0]))
        if around:  # the event around the records holds a value that can never be sent (a duplicate key, ...)
            return Delivery([Message.of(self.name, None, envelope_failure(around, "the OSS event"))])
        messages: list[Message] = []
        # One read per (bucket, key, eTag) in the event: a repeated record gets the same message (and message id),
        # which the delivery then reports as a duplicate of the first.
        reads: dict[tuple[str, str, str], Any] = {}
        for i, record in enumerate(event.value["events"]):
            messages.extend(self._record(record, f"/events/{i}", event, ctx, reads))
        return Delivery(messages)

    def _record(
        self, record: Any, path: str, event: Decoded, ctx: Context, reads: dict[tuple[str, str, str], Any]
    ) -> list[Message]:
        def fail(status: Status, code: str, text: str, where: str = "", message_id: str | None = None) -> list[Message]:
            failure = SourceFailure(status, code, text, path + where if status is Status.INVALID else "")
            return [Message.of(self.name, message_id, failure)]

        if not isinstance(record, dict):
            return fail(Status.INVALID, "InvalidEvent", "an OSS event record must be an object")
        name = record.get("eventName")
        if not isinstance(name, str):
            return fail(Status.INVALID, "InvalidEvent", "the record has no eventName", "/eventName")
        if name not in FINISHED_OBJECT_EVENTS:
            return []  # upload progress, appends, symlinks, removals: no finished object to read
        faults = event.faults_under(path)
        if faults:
            return [Message.of(self.name, None, envelope_failure(faults, "the OSS event record"))]
        oss = _dict(record.get("oss"))
        bucket = _dict(oss.get("bucket")).get("name")
        obj = _dict(oss.get("object"))
        raw_key = obj.get("key")
        if not isinstance(bucket, str) or not bucket:
            return fail(Status.INVALID, "InvalidEvent", "the record names no bucket", "/oss/bucket/name")
        if not BUCKET_NAME.fullmatch(bucket):
            text = "the record's bucket name is not one OSS allows (3-63 lower-case letters, digits and hyphens)"
            return fail(Status.INVALID, "InvalidBucketName", text, "/oss/bucket/name")
        if not isinstance(raw_key, str) or not raw_key:
            return fail(Status.INVALID, "InvalidEvent", "the record names no object key", "/oss/object/key")
        readings = key_readings(raw_key)
        if not readings:
            if any(k in DOT_SEGMENTS for k in _decodings(raw_key)):
                text = "the record's object is named . or .., which no HTTP request can name (rename the object)"
                return fail(Status.INVALID, "InvalidObjectKey", text, "/oss/object/key")
            text = "the record's object key is no name OSS allows (1-1023 long, not starting with / or \\)"
            return fail(Status.INVALID, "InvalidObjectName", text, "/oss/object/key")
        etag = obj.get("eTag")
        etag = etag if isinstance(etag, str) and etag else None
        suffix = "" if etag is None else f"@{etag}"
        message_id = f"oss://{bucket}/{readings[0]}{suffix}"
        limit = ctx.settings.object_limit
        size = obj.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size > limit:
            text = f"the object is {size} bytes; the limit is {limit} (OSS_MAX_OBJECT_BYTES)"
            return fail(Status.INVALID, "TooLarge", text, "/oss/object/size", message_id)
        region = record.get("region")
        region = None if region is None or region == "" else region  # missing or empty: the function's region
        if region is not None and not (isinstance(region, str) and REGION_ID.fullmatch(region)):
            text = "the record's region is not a region id (such as cn-hangzhou)"
            return fail(Status.INVALID, "InvalidRegion", text, "/region", message_id)
        found = reads.get((bucket, raw_key, suffix))
        if found is None:
            found = reads[(bucket, raw_key, suffix)] = _read_first(ctx, bucket, readings, region, limit, etag)
        if isinstance(found, SourceFailure):
            return fail(found.status, found.code, found.message, _POINTERS.get(found.code, ""), message_id)
        key, data = found
        body = decode_body(data, "the object", limit, base64_allowed=False)
        return [Message.of(self.name, f"oss://{bucket}/{key}{suffix}", body)]


def _read_first(
    ctx: Context, bucket: str, readings: list[str], region: str | None, limit: int, etag: str | None = None
) -> tuple[str, bytes] | SourceFailure:
    """(key, bytes) of the first reading of the key that exists, else the failure that ended the search.

    When every reading is missing or a name OSS refuses, the likeliest missing one's NoSuchKey is reported: a later
    reading that OSS refuses (400 InvalidObjectName) was only a guess at the encoding, the object is missing.

    An object found whose ETag is not the event's `etag` may be another object that a later reading names (a key
    sent unencoded: "a+b.json" read as "a b.json" while both exist), so the later readings are looked up too: the
    one holding the event's ETag is the upload; when none does (the object was overwritten since), the first found
    is, as without the check."""
    from imm_batch_updater.oss_reader import OssReader, ReadFailure

    reader = OssReader(ctx)
    missing: SourceFailure | None = None  # the first reading's NoSuchKey
    found: tuple[str, bytes] | None = None  # the first object found, whose ETag is not the event's
    for n, key in enumerate(readings):
        last = n + 1 == len(readings)
        try:
            data, tag = reader.read_tagged(bucket, key, region, limit)
        except ReadFailure as exc:
            if found is not None:
                if last or exc.code not in ("NoSuchKey", "InvalidObjectName"):
                    return found  # what a later reading could not confirm or rule out leaves the likeliest
                continue
            failure = SourceFailure(exc.status, exc.code, exc.message)
            if exc.code not in ("NoSuchKey", "InvalidObjectName"):
                return failure  # an outage is retried, a refusal is final, whatever the other readings would say
            if missing is None and exc.code == "NoSuchKey":
                missing = failure
            if last:
                return missing or failure
            continue
        if etag is None or tag is None or tag.upper() == etag.upper():
            return key, data
        found = found or (key, data)
        if last:
            return found
    raise AssertionError("unreachable: readings is never empty")
