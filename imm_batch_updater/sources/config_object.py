"""Config objects: a timer payload or a direct invocation may be `{"Source": "oss://<bucket>/<key>"}`, and the
documents in that object are applied instead (README "Fleet updates"). The object is read with the role's
credentials under the OSS trigger's rules and limits (`oss_reader`): missing or too large is `invalid`, access
denied `rejected`, an OSS 5xx or network failure `failed` (the platform retries). The URL names no region: the
object is read in the function's own region (`context.region`, else FC_REGION; IMM_REGION is IMM's alone), or at
OSS_ENDPOINT. Other triggers do not resolve
`Source`: there it is an unknown key, refused by the schema like any typo.

    {"Source": "oss://media-config/schedules/nightly.json"}
"""

from __future__ import annotations

import re

from imm_batch_updater.context import Context
from imm_batch_updater.outcome import Status
from imm_batch_updater.sources._body import decode_body
from imm_batch_updater.sources.base import Message, SourceFailure
from imm_batch_updater.sources.oss import (  # OSS's naming rules, as its trigger checks them
    BUCKET_NAME,
    DOT_SEGMENTS,
    is_object_name,
)

SOURCE = re.compile(rf"oss://({BUCKET_NAME.pattern})/(.{{1,1023}})", re.DOTALL)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # as in every string of a document: never sent


def resolve_source(message: Message, ctx: Context) -> Message:
    """`message` itself, or, when its document names a config object, a message carrying that object's documents."""
    document = message.document
    if message.failure is not None or message.faults or not isinstance(document, dict) or "Source" not in document:
        return message

    def fail(status: Status, code: str, text: str, path: str = "") -> Message:
        failure = SourceFailure(status, code, text, path if status is Status.INVALID else "")
        return Message.of(message.source, message.message_id, failure)

    extra = [key for key in document if key != "Source"]
    if extra:
        return fail(Status.INVALID, "SchemaViolation", "Source stands alone: no other field next to it", "/" + extra[0])
    source = document["Source"]
    match = SOURCE.fullmatch(source) if isinstance(source, str) else None
    if match is None or _CONTROL.search(source) or not is_object_name(match.group(2)):
        return fail(Status.INVALID, "SchemaViolation", "Source must be oss://<bucket>/<key>", "/Source")
    if match.group(2) in DOT_SEGMENTS:
        text = "the Source object is named . or .., which no HTTP request can name (rename the object)"
        return fail(Status.INVALID, "InvalidObjectKey", text, "/Source")
    from imm_batch_updater.oss_reader import OssReader, ReadFailure

    bucket, key = match.group(1), match.group(2)
    limit = ctx.settings.object_limit
    try:
        data = OssReader(ctx).read(bucket, key, None, limit)
    except ReadFailure as failure:
        path = "/Source" if failure.status is Status.INVALID else ""
        return fail(failure.status, failure.code, "the Source object: " + failure.message, path)
    body = decode_body(data, "the Source object", limit, base64_allowed=False)  # not its URL: never echoed
    return Message.of(message.source, message.message_id, body)
