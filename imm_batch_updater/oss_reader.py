"""Read an uploaded update document from OSS with the function role's credentials (oss2, imported lazily).

Endpoint: `OSS_ENDPOINT` (a URL such as `http://127.0.0.1:9100`, or a bare host, which means https), else
`https://oss-{region}.aliyuncs.com`, or `https://oss-{region}-internal.aliyuncs.com` with `IMM_NETWORK=vpc`
(the function then needs VPC access; the internal endpoint costs no public traffic). The region is the event
record's `region`, else the function's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imm_batch_updater import outcome as oc


@dataclass(frozen=True)
class ReadFailure(Exception):
    status: str  # outcome status: invalid (missing / too large), rejected (denied), failed (retry)
    code: str
    message: str


class OssReader:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def endpoint(self, region: str | None) -> str:
        settings = self.ctx.settings
        if settings.oss_endpoint:
            e = settings.oss_endpoint
            return e if "://" in e else f"https://{e}"
        region = region or self.ctx.region
        suffix = "-internal" if settings.imm_network == "vpc" else ""
        return f"https://oss-{region}{suffix}.aliyuncs.com"

    def read(self, bucket: str, key: str, region: str | None, max_bytes: int) -> bytes:
        """The object's bytes, at most `max_bytes`, or ReadFailure."""
        import oss2

        creds = self.ctx.credentials()
        if creds.security_token:
            auth: Any = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
        else:
            auth = oss2.Auth(creds.access_key_id, creds.access_key_secret)
        remaining = max(1.0, self.ctx.deadline.remaining_s())
        timeout = min(30.0, remaining)
        try:
            handle = oss2.Bucket(auth, self.endpoint(region), bucket, connect_timeout=timeout)
            stream = handle.get_object(key)
            data = stream.read(max_bytes + 1)
        except oss2.exceptions.NoSuchKey:
            raise ReadFailure(oc.INVALID, "NoSuchKey", "the uploaded object no longer exists") from None
        except oss2.exceptions.NoSuchBucket:
            raise ReadFailure(oc.INVALID, "NoSuchBucket", "the bucket does not exist") from None
        except oss2.exceptions.ServerError as exc:
            status, code = getattr(exc, "status", 0) or 0, str(getattr(exc, "code", "") or "OssError")
            if status == 403:
                raise ReadFailure(oc.REJECTED, code, "access to the object was denied (oss:GetObject)") from None
            if status >= 500 or status in (-1, -2, 408, 429) or status == 0:
                raise ReadFailure(oc.FAILED, code or "OssUnavailable", f"OSS answered {status}") from None
            raise ReadFailure(oc.REJECTED, code, f"OSS refused the read ({status})") from None
        except oss2.exceptions.RequestError as exc:
            raise ReadFailure(oc.FAILED, "NetworkError", f"could not reach OSS: {type(exc).__name__}") from None
        except Exception as exc:
            raise ReadFailure(oc.FAILED, "NetworkError", f"could not read from OSS: {type(exc).__name__}") from None
        if len(data) > max_bytes:
            raise ReadFailure(oc.INVALID, "TooLarge", f"the object is larger than {max_bytes} bytes")
        return data
