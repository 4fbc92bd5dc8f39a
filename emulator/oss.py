"""OSS object API as oss2 sends it to an IP endpoint: PutObject, GetObject, HeadObject, GetObjectMeta, DeleteObject.

oss2 talks *path style* to an IP or `localhost` endpoint (`oss2.api._determine_endpoint_type`: an IP netloc wins
over every other setting), so `oss2.Bucket(auth, "http://127.0.0.1:9100", "demo-bucket")` sends
`PUT /demo-bucket/<percent-encoded key>`. The key is encoded with `urlquote(key, safe="")` (`oss2.api._UrlMaker`),
so `/` inside a key arrives as `%2F`, a space as `%20` and `+` as `%2B`; the emulator decodes the path with
`unquote`, never `unquote_plus`.

Signatures are verified like OSS does:
- V1 (`oss2.Auth`, `oss2.StsAuth`): `Authorization: OSS <ak>:base64(hmac-sha1(secret, VERB\\nContent-MD5\\n
  Content-Type\\nDate\\n<x-oss-* headers>/<bucket>/<decoded key>[?sub-resources]))` (`oss2.auth.ProviderAuth`).
  The resource uses the *decoded* key; only the sub-resources in `ProviderAuth._subresource_key_set` are signed.
- V4 (`oss2.AuthV4`, `StsAuth(..., auth_version="v4")`, both need `region=` on the Bucket): `OSS4-HMAC-SHA256
  Credential=<ak>/<yyyymmdd>/<region>/oss/aliyun_v4_request, Signature=<hex>[, AdditionalHeaders=a;b]`, payload
  `UNSIGNED-PAYLOAD`, signing key chain seeded with `"aliyun_v4" + secret` (`oss2.auth.ProviderAuthV4`). The
  region in the scope must be the emulator's region, as OSS refuses a scope for another region.
- STS keys (a token in the keyring) must send `x-oss-security-token` with exactly that token, and permanent keys
  none: OSS reads a request with a token as an STS one (see `OssService._secret_of`).

Errors are OSS XML (`<Error><Code/><Message/><RequestId/><HostId/></Error>`, no namespace, which
`oss2.exceptions._parse_error_body` requires). A HEAD answer has no body, so, like OSS, the error document also
travels base64-encoded in the `x-oss-err` header: that is how oss2 tells NoSuchKey from NoSuchBucket on HEAD
(`oss2.exceptions.make_exception`, used by `Bucket.object_exists`).

Seed format (`load`): `{"buckets": {"<name>": {"objects": {"<key>": <content>}, "deny": ["<prefix>", ...]}}}`;
a content string is stored as UTF-8, any other JSON value as compact JSON (handy for update documents). A bucket
value of `{}` (or a plain list of bucket names) creates empty buckets.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from emulator import _xml
from emulator.server import Keyring, Request, Response

MAX_SKEW_SECONDS = 15 * 60

# Sub-resources that take part in the V1 string to sign (oss2.auth.ProviderAuth._subresource_key_set, abridged to
# the ones that can reach an object or bucket request; anything else in the query is not signed).
_V1_SUBRESOURCES = frozenset(
    "response-content-type response-content-language response-cache-control logging response-content-encoding "
    "acl uploadId uploads partNumber group link delete website location objectInfo objectMeta response-expires "
    "response-content-disposition cors lifecycle restore qos referer stat bucketInfo append position "
    "security-token live comp status vod startTime endTime x-oss-process symlink callback callback-var tagging "
    "encryption versions versioning versionId policy requestPayment x-oss-traffic-limit qosInfo asyncFetch "
    "x-oss-request-payer sequential inventory inventoryId continuation-token worm wormId wormExtend replication "
    "replicationLocation replicationProgress transferAcceleration cname metaQuery x-oss-ac-source-ip "
    "x-oss-ac-subnet-mask x-oss-ac-vpc-id x-oss-ac-forward-allow resourceGroup style styleName "
    "x-oss-async-process regionList x-oss-write-get-object-response bucketArchiveDirectRead httpsConfig "
    "redundancyTransition x-oss-target-redundancy-type x-oss-redundancy-transition-taskid accessPoint "
    "accessPointPolicy publicAccessBlock x-oss-access-point-name requesterQosInfo qosRequester resourcePoolInfo "
    "resourcePool resourcePoolBuckets".split()
)

# Query parameters that override GetObject response headers (OSS GetObject docs).
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}

# OSS's object naming rules (https://alibabacloud.com/help/en/oss/user-guide/object-naming-conventions): a name that
# breaks them is refused with 400 InvalidObjectName, never looked up:
#   https://www.alibabacloud.com/help/en/oss/support/http-400-status-code (both messages below),
#   https://www.alibabacloud.com/help/en/oss/support/0016-00000005 (a leading / or \),
#   https://www.alibabacloud.com/help/en/oss/support/0016-00000002 (too long).
# The naming page says "1 to 1,023 bytes", the error pages "1 to 1,023 characters": the emulator refuses only what
# both readings refuse (more than 1,023 characters).
MAX_OBJECT_NAME = 1023


def object_name_error(key: str) -> str | None:
    """OSS's InvalidObjectName message for a key OSS can never hold, else None."""
    if len(key) > MAX_OBJECT_NAME:
        return "The Length of Object name must be less than 1024"
    if key.startswith(("/", "\\")):
        return "The specified object is not valid."
    return None


# Query parameters the emulator ignores on object requests; any other sub-resource is an unsupported operation.
_HARMLESS_PARAMS = frozenset(_RESPONSE_OVERRIDES) | {"objectMeta", "security-token"}


# -- CRC-64/XZ (ECMA-182, reflected), the checksum OSS returns in x-oss-hash-crc64ecma and oss2 verifies ----------
def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xC96C5795D7870F42 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


def crc64(data: bytes) -> int:
    """CRC-64/XZ as oss2.utils.Crc64 computes it (poly 0x42F0E1EBA9EA3693 reflected, init and xorout all ones)."""
    crc = 0xFFFFFFFFFFFFFFFF
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class OssObject:
    """One stored object. `etag` is OSS's form without quotes: the upper-case hex MD5 (as in OSS trigger events)."""

    data: bytes
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)  # x-oss-meta-* headers, names lower-cased
    last_modified: float = field(default_factory=time.time)
    etag: str = ""
    crc64: int = 0

    @classmethod
    def make(cls, data: bytes, content_type: str | None = None, metadata: dict[str, str] | None = None) -> OssObject:
        return cls(
            data=bytes(data),
            content_type=content_type or "application/octet-stream",
            metadata=dict(metadata or {}),
            last_modified=time.time(),
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest().upper(),
            crc64=crc64(data),
        )

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def content_md5(self) -> str:
        return self.md5_base64(self.data)

    @staticmethod
    def md5_base64(data: bytes) -> str:
        """The Content-MD5 form: base64 of the raw MD5 digest."""
        return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


@dataclass(frozen=True)
class _DenyRule:
    bucket: str
    prefix: str
    actions: frozenset[str] | None  # None: every object action


class _OssError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _signature_mismatch(
    access_key_id: str, signature: str, string_to_sign: bytes, canonical_request: bytes | None = None
) -> _OssError:
    """OSS's SignatureDoesNotMatch (V1 and V4), with the strings it echoes so a client can debug its signing."""
    detail = {
        "OSSAccessKeyId": access_key_id,
        "SignatureProvided": signature,
        "StringToSign": string_to_sign.decode("utf-8", "replace"),
    }
    if canonical_request is not None:
        detail["CanonicalRequest"] = canonical_request.decode("utf-8", "replace")
    return _OssError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        **detail,
    )


class OssService:
    """Emulated OSS (one account, one region). Thread-safe: the HTTP server runs one thread per connection."""

    name = "oss"

    def __init__(self, keyring: Keyring, region: str = "cn-hangzhou") -> None:
        self.keyring = keyring
        self.region = region
        self._lock = threading.RLock()
        self._buckets: dict[str, dict[str, OssObject]] = {}
        self._deny: list[_DenyRule] = []

    # -- seed and inspection API (used by tests and the seed loader) ---------------------------------------------
    def load(self, seed: dict[str, Any] | None) -> None:
        """Apply an `"oss"` seed section (format in the module docstring); None does nothing."""
        if not seed:
            return
        buckets = seed.get("buckets", {})
        if isinstance(buckets, list):
            buckets = {name: {} for name in buckets}
        for bucket, spec in buckets.items():
            self.create_bucket(bucket)
            for key, content in (spec or {}).get("objects", {}).items():
                if isinstance(content, str):
                    data = content.encode("utf-8")
                else:
                    data = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
                self.put_object(bucket, key, data, content_type=_guess_content_type(key))
            for prefix in (spec or {}).get("deny", []):
                self.deny(bucket, prefix)

    def create_bucket(self, name: str) -> None:
        with self._lock:
            self._buckets.setdefault(name, {})

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            self._buckets.pop(name, None)

    def buckets(self) -> list[str]:
        with self._lock:
            return sorted(self._buckets)

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> OssObject:
        """Store an object directly (creating the bucket if needed) and return it (for `etag` / `size`).

        A key OSS can never hold (`object_name_error`) raises ValueError, as OSS refuses it.
        """
        invalid = object_name_error(key)
        if invalid is not None:
            raise ValueError(f"InvalidObjectName: {invalid}")
        obj = OssObject.make(data, content_type, metadata)
        with self._lock:
            self._buckets.setdefault(bucket, {})[key] = obj
        return obj

    def get_object(self, bucket: str, key: str) -> bytes | None:
        obj = self.head_object(bucket, key)
        return None if obj is None else obj.data

    def head_object(self, bucket: str, key: str) -> OssObject | None:
        with self._lock:
            return self._buckets.get(bucket, {}).get(key)

    def delete_object(self, bucket: str, key: str) -> bool:
        with self._lock:
            return self._buckets.get(bucket, {}).pop(key, None) is not None

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Snapshot of a bucket: key -> content ({} for an unknown bucket)."""
        with self._lock:
            return {k: o.data for k, o in self._buckets.get(bucket, {}).items()}

    def deny(self, bucket: str, prefix: str = "", actions: Iterable[str] | None = None) -> None:
        """Answer 403 AccessDenied for object requests under `prefix` (all of the bucket by default).

        `actions` limits the rule to some of "GetObject", "PutObject", "HeadObject", "GetObjectMeta",
        "DeleteObject" (e.g. a role that may read documents but not write results).
        """
        rule = _DenyRule(bucket, prefix, frozenset(actions) if actions is not None else None)
        with self._lock:
            self._deny.append(rule)

    def allow(self, bucket: str | None = None, prefix: str | None = None) -> None:
        """Remove deny rules: all of them, those of a bucket, or those of one bucket and prefix."""
        with self._lock:
            self._deny = [
                r
                for r in self._deny
                if not ((bucket is None or r.bucket == bucket) and (prefix is None or r.prefix == prefix))
            ]

    def _denied(self, bucket: str, key: str, action: str) -> bool:
        with self._lock:
            return any(
                r.bucket == bucket and key.startswith(r.prefix) and (r.actions is None or action in r.actions)
                for r in self._deny
            )

    # -- Service protocol ----------------------------------------------------------------------------------------
    def matches(self, request: Request) -> bool:
        return True  # the dispatcher asks IMM and MNS first; OSS takes every other request

    def action_of(self, request: Request) -> str:
        bucket, key = _split_path(request.path)
        params = _query(request.query)
        if not bucket:
            return "ListBuckets" if request.method == "GET" else "Unknown"
        if not key:
            return {"GET": "ListObjects", "PUT": "PutBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(
                request.method, "Unknown"
            )
        if request.method == "HEAD":
            return "GetObjectMeta" if "objectMeta" in params else "HeadObject"
        if request.method == "PUT" and request.header("x-oss-copy-source"):
            return "CopyObject"
        return {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "POST": "PostObject"}.get(
            request.method, "Unknown"
        )

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        # Used by the fault injector, which does not say whether the request was a HEAD: send x-oss-err always,
        # so oss2 still sees the code on a HEAD (it only reads the header when the body is empty).
        return self._error(_OssError(status, code, message), head=True, headers=headers)

    def handle(self, request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            return self._handle(request)
        except _OssError as err:
            return self._error(err, head=head)

    # -- request handling ----------------------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        bucket, key = _split_path(request.path)
        params = _query(request.query)
        self._authenticate(request, bucket, key, params)
        action = self.action_of(request)
        if not bucket or not key:
            raise _OssError(501, "NotImplemented", f"The emulator does not implement {action}.")
        unsupported = [p for p in params if p in _V1_SUBRESOURCES and p not in _HARMLESS_PARAMS]
        if unsupported:
            raise _OssError(501, "NotImplemented", f"The emulator does not implement the ?{unsupported[0]} operation.")
        invalid = object_name_error(key)
        if invalid is not None:
            raise _OssError(400, "InvalidObjectName", invalid)
        with self._lock:
            if bucket not in self._buckets:
                raise _OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)
        if self._denied(bucket, key, action):
            raise _OssError(
                403, "AccessDenied", "You have no right to access this object because of bucket acl.", Bucket=bucket
            )
        handler = {
            "PutObject": self._put,
            "GetObject": self._get,
            "HeadObject": self._head,
            "GetObjectMeta": self._head,
            "DeleteObject": self._delete,
        }.get(action)
        if handler is None:
            raise _OssError(501, "NotImplemented", f"The emulator does not implement {action}.")
        return handler(request, bucket, key, params)

    def _put(self, request: Request, bucket: str, key: str, params: dict[str, str]) -> Response:
        body = request.body
        expected_md5 = request.header("content-md5")
        if expected_md5 and expected_md5 != OssObject.md5_base64(body):
            raise _OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        metadata = {k: v for k, v in request.headers.items() if k.startswith("x-oss-meta-")}
        obj = OssObject.make(body, request.header("content-type") or None, metadata)
        with self._lock:
            objects = self._buckets.get(bucket)
            if objects is None:  # deleted meanwhile
                raise _OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)
            if request.header("x-oss-forbid-overwrite").lower() == "true" and key in objects:
                raise _OssError(409, "FileAlreadyExists", "The object you specified already exists.")
            objects[key] = obj
        return Response(
            200,
            {
                **self._base_headers(),
                "ETag": f'"{obj.etag}"',
                "Content-MD5": obj.content_md5,
                "x-oss-hash-crc64ecma": str(obj.crc64),
                "Content-Length": "0",
            },
        )

    def _stored(self, bucket: str, key: str) -> OssObject:
        obj = self.head_object(bucket, key)
        if obj is None:
            raise _OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        return obj

    def _object_headers(self, obj: OssObject) -> dict[str, str]:
        return {
            **self._base_headers(),
            "Content-Type": obj.content_type,
            "ETag": f'"{obj.etag}"',
            "Last-Modified": formatdate(obj.last_modified, usegmt=True),
            "Content-MD5": obj.content_md5,
            "x-oss-hash-crc64ecma": str(obj.crc64),
            "x-oss-object-type": "Normal",
            "x-oss-storage-class": "Standard",
            "Accept-Ranges": "bytes",
            **obj.metadata,
        }

    def _get(self, request: Request, bucket: str, key: str, params: dict[str, str]) -> Response:
        obj = self._stored(bucket, key)
        headers = self._object_headers(obj)
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in params:
                headers[header] = params[param]
        status, body = 200, obj.data
        standard = request.header("x-oss-range-behavior").lower() == "standard"
        byte_range = _parse_range(request.header("range"), obj.size, clamp=standard)
        if byte_range == "unsatisfiable":
            # OSS serves the whole object for an unsatisfiable range unless asked for standard behaviour.
            if standard:
                raise _OssError(416, "InvalidRange", "The requested range cannot be satisfied.")
        elif byte_range is not None:
            first, last = byte_range
            status, body = 206, obj.data[first : last + 1]
            headers["Content-Range"] = f"bytes {first}-{last}/{obj.size}"
        headers["Content-Length"] = str(len(body))
        return Response(status, headers, body)

    def _head(self, request: Request, bucket: str, key: str, params: dict[str, str]) -> Response:
        obj = self._stored(bucket, key)
        headers = self._object_headers(obj)
        if "objectMeta" in params:  # GetObjectMeta answers only the basics
            headers = {
                **self._base_headers(),
                "ETag": headers["ETag"],
                "Last-Modified": headers["Last-Modified"],
                "x-oss-last-access-time": headers["Last-Modified"],
            }
        headers["Content-Length"] = str(obj.size)  # HEAD: the size of the object, no body
        return Response(200, headers, b"")

    def _delete(self, request: Request, bucket: str, key: str, params: dict[str, str]) -> Response:
        self.delete_object(bucket, key)  # deleting a missing key succeeds, as on OSS
        return Response(204, {**self._base_headers(), "Content-Length": "0"})

    # -- authentication ------------------------------------------------------------------------------------------
    def _authenticate(self, request: Request, bucket: str, key: str, params: dict[str, str]) -> None:
        authorization = request.header("authorization")
        if not authorization:
            if "OSSAccessKeyId" in params or "x-oss-signature" in params:
                raise _OssError(403, "AccessDenied", "The emulator does not accept presigned URLs.")
            raise _OssError(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
        if authorization.startswith("OSS "):
            access_key_id, _, signature = authorization[4:].strip().rpartition(":")
            secret = self._secret_of(access_key_id, request)
            self._check_date(request.header("x-oss-date") or request.header("date"), v4=False)
            string_to_sign = _v1_string_to_sign(request, bucket, key)
            expected = base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha1).digest()).decode()
            if not hmac.compare_digest(expected, signature):
                raise _signature_mismatch(access_key_id, signature, string_to_sign)
        elif authorization.startswith("OSS4-HMAC-SHA256 "):
            self._verify_v4(request, bucket, key, authorization)
        else:
            raise _OssError(400, "InvalidArgument", "Authorization header is invalid (the emulator takes V1 and V4).")

    def _secret_of(self, access_key_id: str, request: Request) -> str:
        entry = self.keyring.lookup(access_key_id)
        if entry is None:
            raise _OssError(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=access_key_id,
            )
        secret, token = entry
        presented = request.header("x-oss-security-token")
        if (token is None) != (not presented):
            # A token makes OSS read the request as an STS one: a permanent key with a token (EC 0002-00000002,
            # https://help.aliyun.com/zh/oss/support/0002-00000002) and an STS key without one are both an unknown
            # AccessKey ID to OSS ("The SecurityToken is missing from the request", "the parent AccessKey ID
            # instead of the STS-issued temporary AccessKey ID"):
            # https://www.alibabacloud.com/help/en/oss/the-the-oss-access-key-id-you-provided-does-not-exist-in-our-records-error-message-is-returned-1
            raise _OssError(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=access_key_id,
            )
        if token is not None and not hmac.compare_digest(presented, token):
            # EC 0002-00000006 (https://www.alibabacloud.com/help/en/oss/support/0002-00000006); the code and
            # status are the emulator's reading of it (OSS's pages do not show them).
            raise _OssError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        if token is not None and self.keyring.is_expired(access_key_id):
            # OSS's answer for an expired STS key (EC 0002-00000007).
            raise _OssError(403, "SecurityTokenExpired", "The security token you provided has expired.")
        return secret

    def _check_date(self, value: str, v4: bool) -> float:
        if not value:
            raise _OssError(403, "AccessDenied", "The request has no Date (or x-oss-date) header.")
        try:
            if v4:
                when = calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))
            else:
                when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError) as exc:
            raise _OssError(403, "AccessDenied", f"Invalid date header {value!r}.") from exc
        if abs(time.time() - when) > MAX_SKEW_SECONDS:
            raise _OssError(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=value,
            )
        return when

    def _verify_v4(self, request: Request, bucket: str, key: str, authorization: str) -> None:
        fields = {}
        for part in authorization[len("OSS4-HMAC-SHA256 ") :].split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        credential = fields.get("Credential", "")
        signature = fields.get("Signature", "")
        access_key_id, _, scope = credential.partition("/")
        scope_parts = scope.split("/")
        if not signature or len(scope_parts) != 4 or scope_parts[2:] != ["oss", "aliyun_v4_request"]:
            raise _OssError(400, "InvalidArgument", "Authorization header is invalid.")
        secret = self._secret_of(access_key_id, request)
        date_time = request.header("x-oss-date")
        self._check_date(date_time, v4=True)
        day, region = scope_parts[0], scope_parts[1]
        if date_time[:8] != day:
            raise _OssError(403, "SignatureDoesNotMatch", "The date in the credential scope is not the request date.")
        if region != self.region:
            raise _OssError(
                403, "SignatureDoesNotMatch", f"Invalid signing region in Authorization header: {region!r}."
            )
        additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
        canonical_request = _v4_canonical_request(request, bucket, key, additional)
        string_to_sign = "\n".join(
            ["OSS4-HMAC-SHA256", date_time, scope, hashlib.sha256(canonical_request).hexdigest()]
        ).encode()
        signing_key = ("aliyun_v4" + secret).encode()
        for item in (day, region, "oss", "aliyun_v4_request"):
            signing_key = hmac.new(signing_key, item.encode(), hashlib.sha256).digest()
        expected = hmac.new(signing_key, string_to_sign, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise _signature_mismatch(access_key_id, signature, string_to_sign, canonical_request)

    # -- responses -----------------------------------------------------------------------------------------------
    def _base_headers(self) -> dict[str, str]:
        return {
            "x-oss-request-id": uuid.uuid4().hex[:24].upper(),
            "Date": formatdate(usegmt=True),
            "Server": "AliyunOSS",
        }

    def _error(self, err: _OssError, head: bool, headers: dict[str, str] | None = None) -> Response:
        base = self._base_headers()
        fields: list[_xml.Child] = [("Code", err.code), ("Message", err.message)]
        fields += [("RequestId", base["x-oss-request-id"]), ("HostId", f"oss-{self.region}.aliyuncs.com")]
        fields += list(err.extra.items())
        body = _xml.document("Error", fields)
        out = {**base, "Content-Type": "application/xml", **(headers or {})}
        if head:
            # No body on HEAD: OSS repeats the error document in x-oss-err (oss2.exceptions.make_exception).
            out["x-oss-err"] = base64.b64encode(body).decode()
        return Response(err.status, out, body)


# -- helpers -----------------------------------------------------------------------------------------------------
def _split_path(path: str) -> tuple[str, str]:
    """Raw path `/bucket/enc%20oded%2Fkey` -> ("bucket", "enc oded/key"). The key is decoded after the split."""
    rest = path[1:] if path.startswith("/") else path
    bucket, _, key = rest.partition("/")
    return unquote(bucket), unquote(key)


def _query(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def _v1_string_to_sign(request: Request, bucket: str, key: str) -> bytes:
    """oss2.auth.ProviderAuth.__get_bytes_to_sign, rebuilt from what arrived on the wire."""
    oss_headers = sorted((k, v) for k, v in request.headers.items() if k.startswith("x-oss-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    sub = sorted((k, v) for k, v in parse_qsl(request.query, keep_blank_values=True) if k in _V1_SUBRESOURCES)
    subresource = "?" + "&".join(f"{k}={v}" if v else k for k, v in sub) if sub else ""
    resource = f"/{bucket}/{key}{subresource}" if bucket else f"/{subresource}"
    date = request.header("x-oss-date") or request.header("date")
    parts = [request.method, request.header("content-md5"), request.header("content-type"), date]
    return "\n".join([*parts, canonical_headers + resource]).encode("utf-8")


def _v4_encode(text: str, keep_slash: bool) -> str:
    """oss2.auth.ProviderAuthV4.__v4_uri_encode: RFC 3986 unreserved characters stay, all else is %XX."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char.isascii() and (char.isalnum() or char in "_-~.") or (keep_slash and char == "/"):
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _v4_canonical_request(request: Request, bucket: str, key: str, additional: list[str]) -> bytes:
    uri = _v4_encode(f"/{bucket}/{key}" if bucket else "/", keep_slash=True)
    params = sorted(
        (_v4_encode(k, False), _v4_encode(v, False)) for k, v in parse_qsl(request.query, keep_blank_values=True)
    )
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    signed = sorted(
        (k, v)
        for k, v in request.headers.items()
        if k.startswith("x-oss-") or k in ("content-type", "content-md5") or k in additional
    )
    headers = "".join(f"{k}:{v}\n" for k, v in signed)
    payload = request.header("x-oss-content-sha256") or "UNSIGNED-PAYLOAD"
    return "\n".join([request.method, uri, query, headers, ";".join(sorted(additional)), payload]).encode("utf-8")


def _parse_range(value: str, size: int, clamp: bool = False) -> tuple[int, int] | str | None:
    """One `bytes=a-b` / `bytes=a-` / `bytes=-n` range -> (first, last); "unsatisfiable"; None for none/ignored.

    By default a range must lie within the object: OSS answers `bytes=0-1000` and `bytes=-2000` on a 1,000-byte
    object with the whole object, 200, as for any range out of bounds ("End byte exceeds object size - full object
    returned"; https://www.alibabacloud.com/help/en/oss/how-to-obtain-oss-resources-by-segmenting-http-range-requests).
    `clamp` (x-oss-range-behavior: standard) cuts such a range at the last byte instead, as RFC 7233 does.
    """
    if not value.startswith("bytes=") or "," in value:
        return None
    first_text, _, last_text = value[len("bytes=") :].strip().partition("-")
    try:
        if not first_text:
            count = int(last_text)
            if count <= 0 or size == 0 or (count > size and not clamp):
                return "unsatisfiable"
            return max(size - count, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or last < first or (last >= size and not clamp):
        return "unsatisfiable"
    return first, min(last, size - 1)


def _guess_content_type(key: str) -> str:
    return "application/json" if key.endswith(".json") else "application/octet-stream"
