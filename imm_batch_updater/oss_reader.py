"""Read an uploaded update document from OSS with the function role's credentials (oss2, imported lazily: only
OSS-triggered invocations pay for the import).

Endpoint, in this order:
- `OSS_ENDPOINT`: a URL (`http://127.0.0.1:9100`, the emulator) or a bare host, which means https;
- `IMM_NETWORK=vpc`: `https://oss-{region}-internal.aliyuncs.com` (intranet: no public traffic, no internet access
  needed; only reachable from inside the region);
- otherwise `https://oss-{region}.aliyuncs.com`, which works from anywhere, local runs included.
The region is the event record's (the bucket's), else the function's.

Requests are signed with OSS Signature V4 (V1 is closed to new accounts since March 2025 and to new buckets since
September 2025). oss2's loggers are capped at ERROR: at INFO/DEBUG they print request headers and OSS error bodies,
and an OSS `SignatureDoesNotMatch` body echoes the string to sign, security token included.

Failures map onto outcome statuses: missing object or bucket -> `invalid` (re-reading will not help), access
denied or another refusal -> `rejected`, OSS 5xx / throttling / network -> retried like IMM calls (IMM_MAX_ATTEMPTS,
IMM_BACKOFF_*, within the invocation's deadline), then `failed` so the platform delivers the event again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.credentials import CredentialsUnavailable
from imm_batch_updater.retry import RetryPolicy

logging.getLogger("oss2").setLevel(logging.ERROR)

_session: Any = None  # one oss2.Session per instance: warm invocations reuse connections (auth is per request)


class ReadFailure(Exception):
    """The object could not be read; `status` is the outcome status it leads to."""

    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _session_for(oss2: Any) -> Any:
    global _session
    if _session is None:
        _session = oss2.Session()
    return _session


def _classify(exc: Exception, oss2: Any) -> ReadFailure:
    """Map an oss2 exception to a ReadFailure, without echoing OSS's error body (it may hold signing material)."""
    errors = oss2.exceptions
    if isinstance(exc, errors.NoSuchKey):
        return ReadFailure(oc.INVALID, "NoSuchKey", "the uploaded object does not exist (any more)")
    if isinstance(exc, errors.NoSuchBucket):
        return ReadFailure(oc.INVALID, "NoSuchBucket", "the bucket does not exist")
    if isinstance(exc, errors.ServerError):
        status, code = int(getattr(exc, "status", 0) or 0), str(getattr(exc, "code", "") or "OssError")
        if status >= 500 or status in (408, 429) or code.startswith("Throttling"):
            return ReadFailure(oc.FAILED, code, f"OSS answered {status}")
        if code == "SecurityTokenExpired":  # each attempt reads the credentials afresh; so does a redelivery
            return ReadFailure(oc.FAILED, code, "the role's security token had expired")
        if status == 403:
            return ReadFailure(oc.REJECTED, code, "OSS denied reading the object (check oss:GetObject for the role)")
        return ReadFailure(oc.REJECTED, code, f"OSS refused the read ({status})")
    if isinstance(exc, errors.RequestError):  # connection refused / reset / timeout
        return ReadFailure(oc.FAILED, "NetworkError", f"could not reach OSS: {type(exc).__name__}")
    if isinstance(exc, errors.InconsistentError):  # CRC-64 mismatch: the bytes were damaged on the way
        return ReadFailure(oc.FAILED, "InconsistentData", "the object's CRC-64 did not match what OSS sent")
    if isinstance(exc, errors.ClientError):  # refused locally by oss2 (e.g. a key it will not request)
        return ReadFailure(oc.INVALID, "InvalidObjectKey", "the object key cannot be requested from OSS")
    return ReadFailure(oc.FAILED, "OssReadError", f"could not read the object: {type(exc).__name__}")


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
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def endpoint(self, region: str | None) -> str:
        settings = self.ctx.settings
        if settings.oss_endpoint:
            e = settings.oss_endpoint
            return e if "://" in e else f"https://{e}"
        if not region:
            raise ReadFailure(oc.FAILED, "ConfigurationError", "no OSS region: set OSS_ENDPOINT or IMM_REGION")
        suffix = "-internal" if settings.imm_network == "vpc" else ""
        return f"https://oss-{region}{suffix}.aliyuncs.com"

    def read(self, bucket: str, key: str, region: str | None, max_bytes: int) -> bytes:
        """The object's bytes (at most `max_bytes`, else `TooLarge`), or ReadFailure."""
        import oss2

        region = region or self.ctx.region
        if not region:  # V4 signatures are scoped to the bucket's region
            raise ReadFailure(oc.FAILED, "ConfigurationError", "no OSS region: set IMM_REGION")
        endpoint = self.endpoint(region)
        settings = self.ctx.settings
        policy = RetryPolicy(settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._get(oss2, endpoint, region, bucket, key, max_bytes)
            except ReadFailure as failure:
                if failure.status != oc.FAILED or attempt >= policy.max_attempts:
                    raise
                delay = policy.delay_s(attempt, None)
                if delay >= self.ctx.deadline.remaining_s():
                    raise
                time.sleep(delay)

    def _get(self, oss2: Any, endpoint: str, region: str, bucket: str, key: str, max_bytes: int) -> bytes:
        remaining = self.ctx.deadline.remaining_s()
        if remaining <= 0:
            raise ReadFailure(oc.FAILED, "DeadlineExceeded", "no time left in this invocation to read from OSS")
        settings = self.ctx.settings
        # requests' (connect, read) timeouts, both bounded by the time this invocation has left.
        timeout = (min(settings.connect_timeout_ms / 1000, remaining), min(settings.read_timeout_ms / 1000, remaining))
        try:
            creds = self.ctx.credentials()  # afresh on every attempt: FC may rotate the role's keys
        except CredentialsUnavailable as exc:
            raise ReadFailure(oc.FAILED, "CredentialsUnavailable", str(exc)) from None
        if creds.security_token:
            auth: Any = oss2.StsAuth(
                creds.access_key_id, creds.access_key_secret, creds.security_token, auth_version=oss2.AUTH_VERSION_4
            )
        else:
            auth = oss2.AuthV4(creds.access_key_id, creds.access_key_secret)
        stream = None
        try:
            handle = oss2.Bucket(
                auth, endpoint, bucket, session=_session_for(oss2), connect_timeout=timeout, region=region
            )
            stream = handle.get_object(key)
            data = _read_at_most(stream, max_bytes + 1)  # bounded even when the event's size is stale or missing
            if len(data) <= max_bytes:  # read to the end: check the CRC-64 OSS computed
                oss2.utils.check_crc("GetObject", stream.client_crc, stream.server_crc, stream.request_id)
        except Exception as exc:
            raise _classify(exc, oss2) from None
        finally:
            if stream is not None:
                stream.close()  # hands the connection back (or drops an unread remainder)
        if len(data) > max_bytes:
            text = f"the object is larger than {max_bytes} bytes (OSS_MAX_OBJECT_BYTES)"
            raise ReadFailure(oc.INVALID, "TooLarge", text)
        return data
