"""Server-side verification of Alibaba Cloud POP request signatures, as the API gateway in front of IMM does it.

Two schemes reach an RPC product such as IMM:

- ACS3-HMAC-SHA256 (V3, what `alibabacloud-tea-openapi` sends by default): an `Authorization` header over a
  canonical request (method, path, canonical query, the headers named in `SignedHeaders`, the payload hash).
- HMAC-SHA1 "V2 RPC" (`Config(signature_algorithm='v2')`): a `Signature` query parameter over every query and
  form parameter.

The gateway's other checks are reproduced too, because the function must react to each of them differently
(the POP gateway's error codes, IMM API reference "Error codes"): an unknown key, a wrong signature, a clock
more than 15 minutes off, a replayed nonce, and STS keys whose security token is missing, wrong or expired.

Verifiers return None when the request is authentic, else an `AuthError` (HTTP status, code, message) that the
service renders in its own error format.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, quote

ACS3 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_SECONDS = 15 * 60
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AuthError(NamedTuple):
    status: int
    code: str
    message: str


class KeyStore(Protocol):
    """What the verifier needs from `emulator.server.Keyring`."""

    def lookup(self, access_key_id: str) -> tuple[str, str | None] | None: ...


class SignedRequest(Protocol):
    """What the verifier needs from `emulator.server.Request`."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


def _unknown_key() -> AuthError:
    return AuthError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")


def _incomplete(detail: str) -> AuthError:
    return AuthError(
        400, "IncompleteSignature", f"The request signature does not conform to Aliyun standards. {detail}"
    )


def _mismatch(string_to_sign: str) -> AuthError:
    return AuthError(
        400,
        "SignatureDoesNotMatch",
        f"Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}",
    )


EXPIRED_TIMESTAMP = AuthError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
NONCE_USED = AuthError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
TOKEN_MALFORMED = AuthError(400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.")
TOKEN_EXPIRED = AuthError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
TOKEN_MISMATCH = AuthError(
    400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."
)


class NonceCache:
    """Nonces seen within the replay window, so a captured request cannot be sent twice.

    Memory stays bounded: entries older than `ttl` are dropped (a replay that old already fails the 15-minute
    timestamp check), and beyond `max_entries` the oldest go first.
    """

    def __init__(self, ttl: float = MAX_SKEW_SECONDS, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, nonce: str, now: float | None = None) -> bool:
        """Record `nonce`; False if it was already used within the window."""
        now = time.time() if now is None else now
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if now - seen_at <= self.ttl and len(self._seen) < self.max_entries:
                    break
                del self._seen[oldest]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


# -- canonical forms ---------------------------------------------------------------------------------------------


def canonical_query(query: str) -> str:
    """Decode the raw query (`+` and %XX), sort by key, re-encode RFC 3986 style (space → %20, `~` kept)."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='~')}={quote(params[k], safe='~')}" for k in sorted(params))


def canonical_request(
    method: str, path: str, query: str, headers: dict[str, str], signed_headers: list[str], payload_hash: str
) -> str:
    """The ACS3 canonical request; `headers` lower-cased, values taken as received and stripped."""
    canon_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        [method.upper(), path or "/", canonical_query(query), canon_headers, ";".join(signed_headers), payload_hash]
    )


def string_to_sign(canonical: str) -> str:
    return f"{ACS3}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def _hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_acs3(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The Authorization value for a request, signing every header given (names lower-cased).

    The inverse of `verify_acs3`, for tests and tools that hand-craft requests. It also sets
    `x-acs-content-sha256` in `headers` when missing.
    """
    headers.setdefault("x-acs-content-sha256", hashlib.sha256(body).hexdigest())
    names = sorted(h.lower() for h in headers if h.lower() != "authorization")
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical = canonical_request(method, path, query, lowered, names, lowered["x-acs-content-sha256"])
    signature = _hmac_hex(access_key_secret, string_to_sign(canonical))
    return f"{ACS3} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={signature}"


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """(access key id, signed header names, signature) from an ACS3 Authorization header, or None."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ACS3 or not rest:
        return None
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            return None
        parts[key] = val
    try:
        credential, signed, signature = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
    except KeyError:
        return None
    if not credential or not signature:
        return None
    return credential, [h for h in signed.split(";") if h], signature


def parse_timestamp(value: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(value, TIMESTAMP_FORMAT)))
    except (ValueError, OverflowError):
        return None


# -- verification ------------------------------------------------------------------------------------------------


def _token_error(keyring: Any, access_key_id: str, expected: str | None, presented: str | None) -> AuthError | None:
    """STS keys must carry their own token; permanent keys must not carry one."""
    if expected is None:
        return TOKEN_MISMATCH if presented else None
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        return TOKEN_MALFORMED
    is_expired = getattr(keyring, "is_expired", None)
    if is_expired is not None and is_expired(access_key_id):
        return TOKEN_EXPIRED
    return None


def _freshness_error(timestamp: str, nonce: str, now: float, nonces: NonceCache | None) -> AuthError | None:
    signed_at = parse_timestamp(timestamp)
    if signed_at is None:
        return AuthError(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
    if abs(now - signed_at) > MAX_SKEW_SECONDS:
        return EXPIRED_TIMESTAMP
    if not nonce:
        return AuthError(400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action.")
    if nonces is not None and not nonces.check_and_add(nonce, now):
        return NONCE_USED
    return None


def verify_acs3(
    request: SignedRequest, keyring: KeyStore, *, now: float | None = None, nonces: NonceCache | None = None
) -> AuthError | None:
    """Check an ACS3-HMAC-SHA256 request; None when authentic.

    Order: header syntax, key exists, required headers signed, payload hash, signature, timestamp, STS token,
    nonce. The nonce is recorded last, so a rejected request does not burn it.
    """
    now = time.time() if now is None else now
    headers = request.headers
    parsed = parse_authorization(headers.get("authorization", ""))
    if parsed is None:
        return _incomplete("The Authorization header is missing or malformed.")
    access_key_id, signed, signature = parsed
    entry = keyring.lookup(access_key_id)
    if entry is None:
        return _unknown_key()
    secret, token = entry
    if signed != sorted(signed) or any(h != h.lower() for h in signed):
        return _incomplete("SignedHeaders must be lower-case and sorted.")
    required = {"host"} | {h for h in headers if h.startswith("x-acs-")}
    if "content-type" in headers:
        required.add("content-type")
    unsigned = sorted(required - set(signed))
    if unsigned:
        return _incomplete(f"Headers not signed: {';'.join(unsigned)}.")
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if headers.get("x-acs-content-sha256", "") != payload_hash:
        return AuthError(
            400, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the request payload."
        )
    sts = string_to_sign(canonical_request(request.method, request.path, request.query, headers, signed, payload_hash))
    if not hmac.compare_digest(_hmac_hex(secret, sts), signature):
        return _mismatch(sts)
    claimed_id = headers.get("x-acs-accesskey-id")
    if claimed_id is not None and claimed_id != access_key_id:
        return TOKEN_MISMATCH
    return _token_error(keyring, access_key_id, token, headers.get("x-acs-security-token")) or _freshness_error(
        headers.get("x-acs-date", ""), headers.get("x-acs-signature-nonce", ""), now, nonces
    )


def rpc_params(request: SignedRequest) -> dict[str, str]:
    """Query and urlencoded form parameters merged (the form wins), as V2 signs them."""
    params = dict(parse_qsl(request.query, keep_blank_values=True))
    if request.body and "json" not in request.headers.get("content-type", ""):
        params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def rpc_string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{quote(k, safe='~')}={quote(params[k], safe='~')}" for k in sorted(params) if k != "Signature"
    )
    return f"{method.upper()}&%2F&{quote(canonical, safe='~')}"


def sign_rpc(method: str, params: dict[str, str], access_key_secret: str) -> str:
    """The V2 (HMAC-SHA1) `Signature` value for `params`."""
    digest = hmac.new(
        f"{access_key_secret}&".encode(), rpc_string_to_sign(method, params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def verify_rpc(
    request: SignedRequest, keyring: KeyStore, *, now: float | None = None, nonces: NonceCache | None = None
) -> AuthError | None:
    """Check a legacy V2 RPC request (`Signature` query parameter, HMAC-SHA1); None when authentic."""
    now = time.time() if now is None else now
    params = rpc_params(request)
    access_key_id = params.get("AccessKeyId", "")
    signature = params.get("Signature", "")
    if not access_key_id or not signature:
        return _incomplete("AccessKeyId and Signature are required.")
    entry = keyring.lookup(access_key_id)
    if entry is None:
        return _unknown_key()
    secret, token = entry
    if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
        return AuthError(400, "InvalidSignatureMethod", "Specified signature method is not valid.")
    if not hmac.compare_digest(sign_rpc(request.method, params, secret), signature):
        return _mismatch(rpc_string_to_sign(request.method, params))
    return _token_error(keyring, access_key_id, token, params.get("SecurityToken")) or _freshness_error(
        params.get("Timestamp", ""), params.get("SignatureNonce", ""), now, nonces
    )


def verify_request(
    request: SignedRequest, keyring: KeyStore, *, now: float | None = None, nonces: NonceCache | None = None
) -> AuthError | None:
    """Pick the scheme the request uses: an Authorization header means ACS3, a Signature parameter V2."""
    if request.headers.get("authorization"):
        return verify_acs3(request, keyring, now=now, nonces=nonces)
    if "Signature=" in request.query:
        return verify_rpc(request, keyring, now=now, nonces=nonces)
    return AuthError(400, "MissingAuthorization", "The request is not signed: no Authorization header.")
