"""MNS through its SDK (`aliyun-mns-sdk`, imported lazily), for the MNS topic sink and the work queue.

The SDK has a connect timeout only for http and none at all for https: `account` sets both on its connection, and
the calls run under `retry.call` (and so the watchdog), which bounds them as a whole. Errors become `CallError`s
built from MNS's error code only (its exceptions carry the request).
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.credentials import Credentials
from imm_batch_updater.retry import CallError

# MNS error codes worth another attempt (MNS API reference, error codes).
RETRIABLE_CODES = frozenset({"InternalError", "ServiceUnavailable", "ServerBusy", "TimeExpired", "QPSLimitExceeded"})
# MNS's code for a message body over the queue's or topic's MaximumMessageSize (400; it is also MNS's code for other
# values out of range, none of which the function sends): sending the same body again can never succeed.
TOO_LARGE_CODE = "InvalidArgument"


def account(url: str, creds: Credentials) -> Any:
    from mns.account import Account

    return Account(url, creds.access_key_id, creds.access_key_secret, creds.security_token or "")


def set_timeout(client: Any, timeout_s: float) -> None:
    """Set the connect and read timeouts on an MNS SDK client's connection (`account.mns_client`,
    `queue.mns_client`): the SDK has a connect timeout only for http and none at all for https."""
    http = client.http
    http.connection_timeout = timeout_s
    conn = http.conn
    conn.timeout = timeout_s  # HTTPSConnection.connect uses it (and the socket keeps it for reads)
    if hasattr(conn, "connection_timeout"):
        conn.connection_timeout = timeout_s  # MNSHTTPConnection.connect uses this one
    if getattr(conn, "sock", None) is not None:
        conn.sock.settimeout(timeout_s)


def retriable_code(code: str) -> bool:
    """An MNS error code worth another attempt."""
    return code in RETRIABLE_CODES or code.startswith("Throttling")


def classify(exc: BaseException, what: str) -> tuple[str, str, bool]:
    """(code, message, retriable) for an exception from an MNS SDK call."""
    from mns.mns_exception import MNSClientNetworkException, MNSServerException

    if isinstance(exc, CallError):
        return exc.code, exc.message, exc.retriable
    if isinstance(exc, MNSClientNetworkException):
        return "NetworkError", "no answer from MNS", True
    if isinstance(exc, MNSServerException):
        code = str(getattr(exc, "type", "") or "Unknown")
        return code, f"MNS refused {what}", retriable_code(code)
    if isinstance(exc, (OSError, TimeoutError)):
        return "NetworkError", f"network error: {type(exc).__name__}", True
    code = str(getattr(exc, "type", "") or type(exc).__name__)
    return code, f"could not send {what} to MNS", False
