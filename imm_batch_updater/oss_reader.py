"""Read update documents from OSS (uploaded objects, config objects) with the function role's credentials
(oss2, imported lazily: only invocations that read OSS pay for the import).

Endpoint: `OSS_ENDPOINT` (a URL such as `http://127.0.0.1:9100`, or a bare host, which means https), else
`https://oss-{region}.aliyuncs.com`, or `oss-{region}-internal` with `IMM_NETWORK=vpc` (no public traffic; only
reachable from inside the region). The region is the event record's (the bucket's), else the function's own
(`context.region`, else FC_REGION; never IMM_REGION, which is IMM's): a config object (`oss://bucket/key` names
no region) is read there.

Requests are signed with OSS Signature V4 (V1 is closed to new accounts since March 2025 and to new buckets since
September 2025). oss2's loggers are capped at ERROR: at INFO/DEBUG they print request headers and OSS error bodies,
and an OSS `SignatureDoesNotMatch` body echoes the string to sign, security token included.

Failures map onto outcome statuses: missing object or bucket, or a name no object can have (InvalidObjectName)
-> `invalid` (re-reading will not help), access denied or another refusal -> `rejected`, OSS 5xx / throttling /
network / an expired token -> retried like IMM calls (`retry.call`: IMM_MAX_ATTEMPTS, IMM_BACKOFF_*, within
`ctx.deadline`, which leaves the optional sinks their reserve, however slowly OSS sends), then `failed` so the
platform delivers the event again.
"""

from __future__ import annotations

import logging
from typing import Any

from imm_batch_updater import retry
from imm_batch_updater.context import Context, EndpointUnknown, endpoint
from imm_batch_updater.credentials import CredentialsUnavailable
from imm_batch_updater.outcome import Status
from imm_batch_updater.retry import CallError, RetryPolicy

logging.getLogger("oss2").setLevel(logging.ERROR)

_session: Any = None  # one oss2.Session per instance: warm invocations reuse connections (auth is per request)


class ReadFailure(CallError):
    """The object could not be read; `status` is the outcome status it leads to (`failed` is retried)."""

    def __init__(self, status: Status, code: str, message: str) -> None:
        super().__init__(code, message, retriable=status is Status.FAILED)
        self.status = status


def _session_for(oss2: Any) -> Any:
    global _session
    if _session is None:
        _session = oss2.Session()
    return _session


def _classify(exc: Exception, oss2: Any) -> ReadFailure:
    """Map an oss2 exception to a ReadFailure, without echoing OSS's error body (it may hold signing material)."""
    errors = oss2.exceptions
    if isinstance(exc, errors.NoSuchKey):
        return ReadFailure(Status.INVALID, "NoSuchKey", "the object does not exist (any more)")
    if isinstance(exc, errors.NoSuchBucket):
        return ReadFailure(Status.INVALID, "NoSuchBucket", "the bucket does not exist")
    if isinstance(exc, errors.ServerError) and getattr(exc, "code", "") == "InvalidObjectName":
        # 400: no object can have that name (OSS object naming conventions): reading again fails the same way.
        return ReadFailure(Status.INVALID, "InvalidObjectName", "OSS allows no object of that name")
    if isinstance(exc, errors.ServerError):
        status, code = int(getattr(exc, "status", 0) or 0), str(getattr(exc, "code", "") or "OssError")
        if status >= 500 or status in (408, 429) or code.startswith("Throttling"):
            return ReadFailure(Status.FAILED, code, f"OSS answered {status}")
        if code == "SecurityTokenExpired":  # each attempt reads the credentials afresh; so does a redelivery
            return ReadFailure(Status.FAILED, code, "the role's security token had expired")
        if status == 403:
            return ReadFailure(
                Status.REJECTED, code, "OSS denied reading the object (check oss:GetObject for the role)"
            )
        return ReadFailure(Status.REJECTED, code, f"OSS refused the read ({status})")
    if isinstance(exc, errors.RequestError):  # connection refused / reset / timeout
        return ReadFailure(Status.FAILED, "NetworkError", f"could not reach OSS: {type(exc).__name__}")
    if isinstance(exc, errors.InconsistentError):  # CRC-64 mismatch: the bytes were damaged on the way
        return ReadFailure(Status.FAILED, "InconsistentData", "the object's CRC-64 did not match what OSS sent")
    if isinstance(exc, errors.ClientError):  # refused locally by oss2 (e.g. a key it will not request)
        return ReadFailure(Status.INVALID, "InvalidObjectKey", "the object key cannot be requested from OSS")
    if isinstance(exc, OSError):
        return ReadFailure(Status.FAILED, "NetworkError", f"could not reach OSS: {type(exc).__name__}")
    # Raised on this side (a bug, a key oss2 cannot encode): reading again fails the same way.
    return ReadFailure(Status.REJECTED, "OssReadError", f"could not read the object: {type(exc).__name__}")


def _read_at_most(stream: Any, limit: int) -> bytes:
    """Up to `limit` bytes: oss2's read(n) returns one chunk, which may be shorter than n before the end."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class OssReader:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def read(self, bucket: str, key: str, region: str | None, max_bytes: int) -> bytes:
        """The object's bytes (at most `max_bytes`, else `TooLarge`), or ReadFailure."""
        return self.read_tagged(bucket, key, region, max_bytes)[0]

    def read_tagged(self, bucket: str, key: str, region: str | None, max_bytes: int) -> tuple[bytes, str | None]:
        """`read`, and the ETag OSS answered with it (without quotes; None when it sent none)."""
        import oss2

        settings = self.ctx.settings
        region = region or self.ctx.region  # the function's own region (never IMM_REGION: that is IMM's)
        if not region:  # V4 signatures are scoped to the bucket's region
            raise ReadFailure(
                Status.FAILED, "ConfigurationError", "no OSS region (the record's, else the function's): set FC_REGION"
            )
        try:
            url = endpoint(
                "oss", settings.oss_endpoint, variable="OSS_ENDPOINT", region=region, network=settings.imm_network
            ).url
        except EndpointUnknown as exc:
            raise ReadFailure(Status.FAILED, "ConfigurationError", str(exc)) from None
        policy = RetryPolicy(settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms)

        def attempt(left_s: float) -> tuple[bytes, str | None]:
            return self._get(oss2, url, region, bucket, key, max_bytes, left_s)

        try:
            data, _ = retry.call(attempt, policy=policy, deadline=self.ctx.deadline, what="to read from OSS")
        except ReadFailure:
            raise
        except CallError as error:  # DeadlineExceeded
            raise ReadFailure(Status.FAILED, error.code, error.message) from None
        return data

    def _get(
        self, oss2: Any, url: str, region: str, bucket: str, key: str, max_bytes: int, left_s: float
    ) -> tuple[bytes, str | None]:
        settings = self.ctx.settings
        # requests' (connect, read) timeouts, both bounded by the time this invocation has left; the watchdog
        # bounds the whole read.
        timeout = (min(settings.connect_timeout_ms / 1000, left_s), min(settings.read_timeout_ms / 1000, left_s))
        try:
            creds = self.ctx.credentials()  # afresh on every attempt: FC may rotate the role's keys
        except CredentialsUnavailable as exc:
            raise ReadFailure(Status.FAILED, "CredentialsUnavailable", str(exc)) from None
        if creds.security_token:
            auth: Any = oss2.StsAuth(
                creds.access_key_id, creds.access_key_secret, creds.security_token, auth_version=oss2.AUTH_VERSION_4
            )
        else:
            auth = oss2.AuthV4(creds.access_key_id, creds.access_key_secret)
        stream = None
        try:
            handle = oss2.Bucket(auth, url, bucket, session=_session_for(oss2), connect_timeout=timeout, region=region)
            stream = handle.get_object(key)
            etag = getattr(stream, "etag", None)
            data = _read_at_most(stream, max_bytes + 1)  # bounded even when the event's size is stale or missing
            if len(data) <= max_bytes:  # read to the end: check the CRC-64 OSS computed
                oss2.utils.check_crc("GetObject", stream.client_crc, stream.server_crc, stream.request_id)
        except Exception as exc:
            raise _classify(exc, oss2) from None
        finally:
            if stream is not None:
                try:
                    stream.close()  # hands the connection back (or drops an unread remainder)
                except Exception:  # noqa: S110 -- a connection the watchdog shut down may fail to close cleanly
                    pass
        if len(data) > max_bytes:
            text = f"the object is larger than {max_bytes} bytes (OSS_MAX_OBJECT_BYTES)"
            raise ReadFailure(Status.INVALID, "TooLarge", text)
        return data, etag if isinstance(etag, str) and etag else None
