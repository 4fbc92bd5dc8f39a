"""IMM calls (GetBatch, UpdateBatch, ResumeBatch) through the official SDK, with retries and error mapping.

One SDK client is kept per (endpoint, credentials) and reused while the credentials stay the same, so warm
invocations keep their HTTP connection; new STS keys get a new client. Every error becomes an `ImmError` with a
`kind` the apply step maps onto outcome statuses. Error messages are built here from the error code and IMM's
message: SDK exceptions carry the request (headers with the security token), so they are never logged as is.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from imm_batch_updater.credentials import Credentials
from imm_batch_updater.retry import Deadline, RetryBudget, RetryPolicy

# kinds of ImmError
RETRY = "retry"  # network, timeout, 5xx: try again
THROTTLE = "throttle"  # Throttling*: try again later
NOT_FOUND = "not_found"
PERMISSION = "permission"  # 403, Forbidden*, NoPermission
AUTH = "auth"  # bad key / signature / token: final
# noqa below: a kind name, not a secret. InvalidSecurityToken.Expired: new credentials and one more try, then `failed`
TOKEN_EXPIRED = "token_expired"  # noqa: S105
STATE = "state"  # the batch state forbids the operation
CLIENT = "client"  # any other 4xx: final

RETRIABLE_CODES = frozenset({"ServiceUnavailable", "InternalError", "SignatureNonceUsed", "ServiceTimeout"})
AUTH_CODE_PREFIXES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "IncompleteSignature")
PERMISSION_CODES = ("Forbidden", "NoPermission")
# A batch state named in a refusal: a state word as the batch's state ("state is Running", "status Suspended",
# "is already Succeeded", "Running state"), not any capitalised word ("Validation Failed.", a parameter value
# echoed back such as "Prefix Running/").
_STATE = r"(?:Ready|Running|Failed|Suspended|Succeeded)\b(?!/)"  # capitalised, as IMM spells states; not a path
STATE_NAMES = re.compile(
    rf"\b(?i:state|status)\W+(?:(?i:is|of)\W+)?(?:(?i:now|already)\W+)?{_STATE}"
    rf"|\b(?i:is|already|currently)\s+(?:(?i:in)\s+)?(?:(?i:the)\s+)?{_STATE}"
    rf"|\b{_STATE}\s+(?i:state|status)\b"
)
MIN_ATTEMPT_S = 0.2  # do not start an attempt with less time than this left


@dataclass
class ImmError(Exception):
    kind: str
    code: str
    message: str
    http_status: int | None = None
    request_id: str | None = None
    retry_after_ms: int | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def retriable(self) -> bool:
        return self.kind in (RETRY, THROTTLE)


class ImmCallFailed(Exception):
    def __init__(self, error: ImmError, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


def names_state(message: str) -> bool:
    """Does IMM's refusal name the batch state (e.g. "... when the batch state is Running")? IMM's wording is not
    documented; DESIGN pins `conflict` when the message names the state."""
    return STATE_NAMES.search(message) is not None


def _clean_message(raw: str | None, status: int | None) -> str:
    # The SDK formats `message` as "code: <status>, <IMM Message> request id: <id>"; keep IMM's own text.
    text = raw or ""
    text = re.sub(r"^code: \d+, ", "", text)
    text = re.sub(r" request id: [\w-]+$", "", text)
    return text[:500]


def classify(exc: BaseException) -> ImmError:
    """Map an SDK exception onto an ImmError (never keeping the exception's request, which holds the token)."""
    from alibabacloud_tea_openapi.exceptions import ThrottlingException
    from darabonba.exceptions import ResponseException, UnretryableException

    if isinstance(exc, ResponseException):
        code = str(getattr(exc, "code", None) or "Unknown")
        status = getattr(exc, "status_code", None)
        message = _clean_message(getattr(exc, "message", None), status)
        request_id = getattr(exc, "request_id", None)
        retry_after = getattr(exc, "retry_after", None)
        retry_after = retry_after if isinstance(retry_after, int) else None

        def err(kind: str) -> ImmError:
            return ImmError(kind, code, message, status, request_id, retry_after)

        if isinstance(exc, ThrottlingException) or code.startswith("Throttling") or status == 429:
            return err(THROTTLE)
        if code in RETRIABLE_CODES or (status is not None and status >= 500):
            return err(RETRY)
        if code == "InvalidSecurityToken.Expired":
            return err(TOKEN_EXPIRED)
        if code.startswith(AUTH_CODE_PREFIXES):
            return err(AUTH)
        if code == "ResourceNotFound":
            return err(NOT_FOUND)
        if status == 403 or code.startswith(PERMISSION_CODES):
            return err(PERMISSION)
        if names_state(message):
            return err(STATE)
        return err(CLIENT)
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        detail = getattr(inner, "message", None) or type(inner).__name__
        return ImmError(RETRY, "NetworkError", f"no valid answer from IMM: {str(detail)[:300]}")
    if isinstance(exc, (OSError, TimeoutError)):
        return ImmError(RETRY, "NetworkError", f"network error: {type(exc).__name__}")
    return ImmError(RETRY, "UnexpectedError", f"unexpected error calling IMM: {type(exc).__name__}")


class ImmGateway:
    """Signed IMM calls for one invocation's credentials, with retries.

    `refresh_credentials` is called when IMM says the STS token expired: the call is then retried once with
    whatever it returns.
    """

    def __init__(
        self,
        endpoint: str,
        protocol: str,
        region: str | None,
        credentials: Credentials,
        policy: RetryPolicy,
        deadline: Deadline,
        connect_timeout_ms: int,
        read_timeout_ms: int,
        budget: RetryBudget | None = None,
        refresh_credentials: Callable[[], Credentials] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.region = region
        self.credentials = credentials
        self.policy = policy
        self.deadline = deadline
        self.connect_timeout_ms = connect_timeout_ms
        self.read_timeout_ms = read_timeout_ms
        self.budget = budget or RetryBudget(10_000)
        self.refresh_credentials = refresh_credentials
        self.sleep = sleep

    # -- the three operations ---------------------------------------------------------------------------------
    def get_batch(self, project: str, batch_id: str) -> tuple[dict[str, Any], int, str | None]:
        body, attempts = self._call("GetBatch", {"query": {"Id": batch_id, "ProjectName": project}})
        batch = body.get("Batch")
        return (batch if isinstance(batch, dict) else {}), attempts, body.get("RequestId")

    def update_batch(self, project: str, batch_id: str, changes: dict[str, Any]) -> tuple[int, str | None]:
        body, attempts = self._call("UpdateBatch", {"body": update_form(project, batch_id, changes)})
        return attempts, body.get("RequestId")

    def resume_batch(self, project: str, batch_id: str) -> tuple[int, str | None]:
        body, attempts = self._call("ResumeBatch", {"body": {"Id": batch_id, "ProjectName": project}})
        return attempts, body.get("RequestId")

    # -- retries -------------------------------------------------------------------------------------------------
    def _call(self, action: str, request: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """IMM's answer body (a dict) and the number of attempts it took."""
        attempts = 0
        refreshed = False
        while True:
            remaining_ms = int(self.deadline.remaining_s() * 1000)
            if remaining_ms < MIN_ATTEMPT_S * 1000:
                raise ImmCallFailed(
                    ImmError(RETRY, "DeadlineExceeded", "no time left in this invocation for another attempt"),
                    attempts,
                )
            runtime = _runtime_options(*attempt_timeouts(remaining_ms, self.connect_timeout_ms, self.read_timeout_ms))
            attempts += 1
            try:
                return _answer_body(call_api(client_for(self), action, request, runtime)), attempts
            except Exception as exc:
                error = classify(exc)
            if error.kind == TOKEN_EXPIRED and not refreshed and self.refresh_credentials is not None:
                refreshed = True
                self.credentials = self.refresh_credentials()
                continue
            if error.kind == TOKEN_EXPIRED:
                # Fetched again and still expired: more attempts with the same keys cannot help, but the next
                # invocation gets the role's current keys from FC. Not final: the platform redelivers.
                error.kind = RETRY
                raise ImmCallFailed(error, attempts)
            if not error.retriable or attempts >= self.policy.max_attempts:
                raise ImmCallFailed(error, attempts)
            delay = self.policy.delay_s(attempts, error.retry_after_ms)
            # Give up now if waiting would leave no time for the next attempt; the platform retries later.
            if delay + MIN_ATTEMPT_S > self.deadline.remaining_s() or not self.budget.take():
                raise ImmCallFailed(error, attempts)
            self.sleep(delay)


# -- the wire ----------------------------------------------------------------------------------------------------
# The calls are the SDK's documented "generic calls" (alibabacloud-tea-openapi's `Client.call_api`; signing, HTTP
# and error mapping are all the SDK's), with the form the IMM SDK's generated `*_with_options` methods would build.
# Those methods turn the already validated document into request models and back into the same JSON (validate,
# convert, to_map/from_map, deepcopy) on every call: about 10 us per update, most of what stood between the
# function and the bare call it makes. tests/function/test_imm_wire.py checks that both put the same bytes on the
# wire.
_ACTION_PARAMS = dict(
    version="2020-09-30",
    protocol="HTTPS",  # the client's protocol (IMM_PROTOCOL) takes precedence, as for the generated methods
    pathname="/",
    method="POST",
    auth_type="AK",
    style="RPC",
    req_body_type="formData",
    body_type="json",
)
# The JSON inside a form field, as the SDK writes it (`DaraCore.to_json_string`): compact, UTF-8 kept as is.
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Model objects come out of the SDK's `to_map` with their keys in alphabetical order; Tags is a plain map whose
# order is the caller's.
_compact_sorted = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def update_form(project: str, batch_id: str, changes: dict[str, Any]) -> dict[str, str]:
    """UpdateBatch's form fields, in the SDK's order; fields left out of `changes` are not sent (they keep their
    current value; an explicit `Actions=[]` would clear the actions)."""
    form: dict[str, str] = {}
    if "Actions" in changes:
        form["Actions"] = _compact_sorted(changes["Actions"])
    form["Id"] = batch_id
    if "Input" in changes:
        form["Input"] = _compact_sorted(changes["Input"])
    form["ProjectName"] = project
    if "Tags" in changes:
        form["Tags"] = _compact(changes["Tags"])
    return form


@lru_cache(maxsize=8)
def _params(action: str) -> Any:
    from alibabacloud_tea_openapi.utils_models import Params

    return Params(action=action, **_ACTION_PARAMS)


@lru_cache(maxsize=1)
def _request_type() -> Any:
    from alibabacloud_tea_openapi.utils_models import OpenApiRequest

    return OpenApiRequest


def call_api(client: Any, action: str, request: dict[str, Any], runtime: Any) -> Any:
    return client.call_api(_params(action), _request_type()(**request), runtime)


def _answer_body(answer: Any) -> dict[str, Any]:
    body = answer.get("body") if isinstance(answer, dict) else None
    return body if isinstance(body, dict) else {}


def attempt_timeouts(remaining_ms: int, connect_timeout_ms: int, read_timeout_ms: int) -> tuple[int, int]:
    """(read, connect) timeouts in ms for one attempt: the configured ones, cut so that a connect that hangs and
    then a read that hangs still end within `remaining_ms` (each is at least 100 ms; attempts start only with
    MIN_ATTEMPT_S left). The connect gets at most a third of what is left: it normally takes milliseconds."""
    connect = max(100, min(connect_timeout_ms, remaining_ms // 3))
    read = max(100, min(read_timeout_ms, remaining_ms - connect))
    return read, connect


@lru_cache(maxsize=64)
def _runtime_options(read_timeout_ms: int, connect_timeout_ms: int) -> Any:
    """The SDK's per-call options for these timeouts, built once: it has ~30 fields and the SDK only reads it."""
    from darabonba.runtime import RuntimeOptions

    return RuntimeOptions(read_timeout=read_timeout_ms, connect_timeout=connect_timeout_ms)


_clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_clients_lock = threading.Lock()
MAX_CLIENTS = 4  # a few live credential sets at most (rotation overlaps); the oldest client is dropped
_clients_last: tuple[tuple[Any, ...], Any] | None = None  # the client used last, checked first without the lock


def client_for(gateway: ImmGateway) -> Any:
    """The SDK client for the gateway's endpoint and credentials, reused across invocations of this instance."""
    creds = gateway.credentials
    key = (gateway.endpoint, gateway.protocol, gateway.region, creds.cache_key)
    last = _clients_last
    if last is not None and last[0] == key:  # the common case: the same keys as the previous call
        return last[1]
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            _remember_last(key, client)
            return client
    # The SDK core's generic client: the IMM product SDK adds only request models (which `call_api` does without)
    # and an endpoint lookup (IMM_ENDPOINT / IMM_REGION always give one here), and takes ~70 ms to import.
    from alibabacloud_tea_openapi.client import Client
    from alibabacloud_tea_openapi.models import Config

    config = Config(
        access_key_id=creds.access_key_id,
        access_key_secret=creds.access_key_secret,
        security_token=creds.security_token,
        endpoint=gateway.endpoint,
        protocol=gateway.protocol,
        region_id=gateway.region,
        connect_timeout=gateway.connect_timeout_ms,
        read_timeout=gateway.read_timeout_ms,
    )
    client = Client(config)
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
        _remember_last(key, client)
    return client


def _remember_last(key: tuple[Any, ...], client: Any) -> None:
    global _clients_last
    _clients_last = (key, client)  # one tuple, replaced whole: readers without the lock see old or new, never a mix
