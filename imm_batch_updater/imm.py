"""IMM calls (GetBatch, UpdateBatch, ResumeBatch, ListBatches) through the official IMM SDK
(`alibabacloud-imm20200930`: its `Client` and request models), with retries, the deadline and error mapping.

- Requests are built from the validated document's fields with the SDK's request models (constructor keywords and
  nested models), never with `from_map` on a partial document: `UpdateBatchRequest.from_map` always sets `actions`
  to a list, and an empty one is sent as `Actions=[]`, which clears the batch's actions (SDK 5.0.3,
  `models/_update_batch_request.py`). Fields the document leaves out are not sent and keep their value.
- Only IMM's answer counts: before the SDK maps an answer onto its response models, `_CheckedClient.call_api`
  checks that it is a JSON object carrying `RequestId` (and, for GetBatch and ListBatches, batches in one of the
  five states), made only of strict JSON. Anything else (`{}`, `null`, an array, NaN) is a retriable
  `InvalidResponse`: a proxy or a misconfigured endpoint answered, not IMM.
  What the function reads of an answer (RequestId, the batch, the listing) it reads from that checked body, never
  from the SDK's response models: `DaraCore.from_map` swallows a mapping error and leaves the model half built.
- One SDK client is kept per (endpoint, credentials) and reused while the credentials stay the same, so warm
  invocations keep their connection; new STS keys get a new client.
- Every error becomes an `ImmError` whose `kind` the apply step maps onto outcome statuses. Messages are built from
  the error code and IMM's message only: SDK exceptions carry the signed request (the security token), so they are
  never logged as they are.

Error facts (notes in the README, "Reliability"): the SDK raises `ClientException` (4xx), `ServerException` (5xx),
`ThrottlingException` (`x-acs-retry-after` present), all `darabonba.exceptions.ResponseException`; a network
failure or an error body that is not JSON surfaces as `UnretryableException`, whose `last_request` is None when
the request was never sent (it could not be built or encoded: our side, final).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from imm_batch_updater import ratelimit, retry
from imm_batch_updater.context import Endpoint
from imm_batch_updater.credentials import Credentials
from imm_batch_updater.ratelimit import Pacer
from imm_batch_updater.retry import CallError, Deadline, RetryBudget, RetryPolicy
from imm_batch_updater.strictjson import has_surrogate

STATES = frozenset({"Ready", "Running", "Failed", "Suspended", "Succeeded"})


class Kind(Enum):
    """What an IMM error means for the document (`apply` maps it onto an outcome status)."""

    RETRY = "retry"  # network, timeout, 5xx: try again
    THROTTLE = "throttle"  # Throttling*: try again later
    ANSWER = "answer"  # the answer was not IMM's (not JSON, no RequestId, bad State): try again
    NOT_FOUND = "not_found"
    PERMISSION = "permission"  # 403, Forbidden*, NoPermission: final
    AUTH = "auth"  # bad key / signature / token: final
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 -- a kind name. Fetched again and retried once, then `failed`
    STATE = "state"  # the batch state forbids the operation: final
    CLIENT = "client"  # any other 4xx: final
    LOCAL = "local"  # the request could not be built or encoded on this side: final, IMM never saw it


_RETRIABLE_KINDS = frozenset({Kind.RETRY, Kind.THROTTLE, Kind.ANSWER})
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


class ImmError(CallError):
    """An IMM call that failed for good (after its retries) or that must not be retried."""

    def __init__(
        self,
        kind: Kind,
        code: str,
        message: str,
        http_status: int | None = None,
        request_id: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(code, message, retriable=kind in _RETRIABLE_KINDS, retry_after_ms=retry_after_ms)
        self.kind = kind
        self.http_status = http_status
        self.request_id = request_id


class NotImmAnswer(Exception):
    """A 2xx answer that is not IMM's (raised inside the SDK call, before its models see the answer)."""


def names_state(message: str) -> bool:
    """Does IMM's refusal name the batch state (e.g. "... when the batch state is Running")? IMM's wording is not
    documented; the contract (README "Outcomes") makes it `conflict` when the message names the state."""
    return STATE_NAMES.search(message) is not None


def _clean_message(raw: str | None) -> str:
    # The SDK formats `message` as "code: <status>, <IMM Message> request id: <id>"; keep IMM's own text.
    text = raw or ""
    text = re.sub(r"^code: \d+, ", "", text)
    text = re.sub(r" request id: [\w-]+$", "", text)
    return text[:500]


def classify(exc: BaseException) -> ImmError:
    """Map an exception from an SDK call onto an ImmError (never keeping the exception, which holds the token)."""
    from alibabacloud_tea_openapi.exceptions import ThrottlingException
    from darabonba.exceptions import ResponseException, UnretryableException

    if isinstance(exc, ImmError):
        return exc
    if isinstance(exc, NotImmAnswer):
        return ImmError(Kind.ANSWER, "InvalidResponse", str(exc))
    if isinstance(exc, ResponseException):
        code = str(getattr(exc, "code", None) or "Unknown")
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        message = _clean_message(getattr(exc, "message", None))
        request_id = getattr(exc, "request_id", None)
        retry_after = getattr(exc, "retry_after", None)
        retry_after = retry_after if isinstance(retry_after, int) else None

        def err(kind: Kind) -> ImmError:
            return ImmError(kind, code, message, status, request_id, retry_after)

        if isinstance(exc, ThrottlingException) or code.startswith("Throttling") or status == 429:
            return err(Kind.THROTTLE)
        if code in RETRIABLE_CODES or (status is not None and status >= 500):
            return err(Kind.RETRY)
        if code == "InvalidSecurityToken.Expired":
            return err(Kind.TOKEN_EXPIRED)
        if code.startswith(AUTH_CODE_PREFIXES):
            return err(Kind.AUTH)
        if code == "ResourceNotFound":
            return err(Kind.NOT_FOUND)
        if status == 403 or code.startswith(PERMISSION_CODES):
            return err(Kind.PERMISSION)
        if names_state(message):
            return err(Kind.STATE)
        return err(Kind.CLIENT)
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        if getattr(exc, "last_request", None) is None:
            # Failed while the request was being built, encoded or signed: IMM never saw it, and sending the same
            # document again fails the same way.
            return ImmError(Kind.LOCAL, "RequestNotSent", f"the request could not be built: {type(inner).__name__}")
        if isinstance(inner, OSError) or type(inner).__name__ == "RetryError":  # darabonba wraps IOError
            detail = getattr(inner, "message", None) or type(inner).__name__
            return ImmError(Kind.RETRY, "NetworkError", f"no answer from IMM: {str(detail)[:300]}")
        # Sent, and the answer could not be read (an error body that is not JSON, an HTML page from a proxy).
        return ImmError(Kind.ANSWER, "InvalidResponse", f"IMM's answer could not be read: {type(inner).__name__}")
    if isinstance(exc, (OSError, TimeoutError)):
        return ImmError(Kind.RETRY, "NetworkError", f"network error: {type(exc).__name__}")
    # Raised on this side outside the SDK's HTTP call (building request models, mapping an answer already
    # checked): retrying cannot help.
    return ImmError(Kind.LOCAL, "ClientError", f"the IMM SDK call failed on this side: {type(exc).__name__}")


# -- what counts as IMM's answer ---------------------------------------------------------------------------------
def check_answer(action: str, answer: Any) -> None:
    """Raise NotImmAnswer unless `answer` (the SDK's `{"body", "headers", "statusCode"}`) is IMM's answer."""
    body = answer.get("body") if isinstance(answer, dict) else None
    if not isinstance(body, dict):
        raise NotImmAnswer(f"the answer to {action} is not a JSON object ({type(body).__name__})")
    request_id = body.get("RequestId")
    if not isinstance(request_id, str) or not request_id:
        raise NotImmAnswer(f"the answer to {action} carries no RequestId")
    if action == "GetBatch":
        batch = body.get("Batch")
        if not isinstance(batch, dict) or not _is_state(batch.get("State")):
            raise NotImmAnswer("the GetBatch answer has no batch in one of the five states")
    elif action == "ListBatches":
        batches = body.get("Batches", [])
        if not isinstance(batches, list) or not all(
            isinstance(b, dict) and isinstance(b.get("Id"), str) and b.get("Id") and _is_state(b.get("State"))
            for b in batches
        ):
            raise NotImmAnswer("the ListBatches answer lists a batch without an Id or one of the five states")
        token = body.get("NextToken")
        if token is not None and not isinstance(token, str):
            raise NotImmAnswer("the ListBatches answer has a NextToken that is not a string")
    if (len(body) > 1 or has_surrogate(request_id)) and _not_strict(body):
        raise NotImmAnswer(f"the answer to {action} holds values that are not JSON (NaN, Infinity, lone surrogates)")


def _is_state(value: Any) -> bool:
    """One of the five states (a list or an object in its place is not IMM's answer: never hashed)."""
    return isinstance(value, str) and value in STATES


def _not_strict(body: dict[str, Any]) -> bool:
    """Does the decoded answer hold a value strict JSON cannot carry (NaN, Infinity, a lone surrogate)?

    First orjson, which refuses lone surrogates (and anything else the standard encoder would have to convert) but
    writes NaN and Infinity as `null`: an answer it encodes without any `null` in the text is strict. Anything else
    (an answer holding a null, or one orjson refuses) gets the exact check, the standard encoder with
    `allow_nan=False`. Same answer either way; the first costs a fraction of the second on a batch (it runs on
    every GetBatch: bench/README.md)."""
    try:
        if b"null" not in orjson.dumps(body):
            return False
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, a non-str key, an integer beyond 64 bits, depth
        pass
    try:  # NaN/Infinity raise ValueError, a lone surrogate UnicodeEncodeError (a ValueError too)
        json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        return True
    return False


_answers = threading.local()  # the last checked answer body of each thread's call (see _CheckedClient)


@lru_cache(maxsize=1)
def _client_class() -> type:
    # Imported on first use: the SDK takes ~70 ms to import, and invocations that only answer (HTTP GETs,
    # invalid documents) never need it.
    from alibabacloud_imm20200930.client import Client

    class _CheckedClient(Client):
        """The IMM SDK's client; only its answers are checked before its response models see them (and kept for
        the calling thread: a batch is read from IMM's answer as sent, not from the model's `to_map` copy)."""

        def call_api(self, params: Any, request: Any, runtime: Any) -> Any:
            answer = super().call_api(params, request, runtime)
            check_answer(params.action, answer)
            _answers.body = answer["body"]
            return answer

    return _CheckedClient


@lru_cache(maxsize=1)
def _models() -> Any:
    from alibabacloud_imm20200930 import models

    return models


# -- the client for one invocation -------------------------------------------------------------------------------
_refresh_lock = threading.Lock()  # one refresh per ImmClient, whatever its threads (rare: shared by all of them)


class Answer(NamedTuple):
    attempts: int
    request_id: str | None
    batch: dict[str, Any] | None = None  # GetBatch
    batches: list[dict[str, Any]] | None = None  # ListBatches (one page)
    next_token: str | None = None  # ListBatches


def _pace_too_slow(interval_s: float, budget_s: float) -> ImmError:
    return ImmError(
        Kind.RETRY,
        "ConfigurationError",
        f"IMM_MAX_QPS starts IMM calls {interval_s:g} s apart, but an invocation's IMM calls have {budget_s:.3g} s "
        "(the function timeout less its margin and the optional sinks' reserve): a document's second call "
        "(UpdateBatch after GetBatch) can never start in time; raise IMM_MAX_QPS or the function timeout",
    )


class ImmClient:
    """Signed IMM calls with one invocation's credentials, retries, deadline and pacing.

    `refresh_credentials` is called when IMM says the STS token expired: the call is then tried once more with
    whatever it returns; still expired, the error is `TOKEN_EXPIRED` (the document `failed`, so the platform
    delivers it again and FC hands that invocation the role's current keys).
    """

    __slots__ = (
        "endpoint",
        "region",
        "credentials",
        "policy",
        "deadline",
        "connect_timeout_ms",
        "read_timeout_ms",
        "budget",
        "refresh_credentials",
        "pacer",
        "sleep",
        "_refreshed",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        region: str | None,
        credentials: Credentials,
        policy: RetryPolicy,
        deadline: Deadline,
        connect_timeout_ms: int,
        read_timeout_ms: int,
        budget: RetryBudget | None = None,
        refresh_credentials: Callable[[], Credentials] | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.policy = policy
        self.deadline = deadline
        self.connect_timeout_ms = connect_timeout_ms
        self.read_timeout_ms = read_timeout_ms
        self.budget = budget
        self.refresh_credentials = refresh_credentials
        self.pacer = pacer
        self.sleep = sleep
        self._refreshed = False  # set once, under _refresh_lock

    # -- the operations -----------------------------------------------------------------------------------------
    def get_batch(self, project: str, batch_id: str) -> Answer:
        request = _build(lambda m: m.GetBatchRequest(project_name=project, id=batch_id))
        body, attempts = self._call("GetBatch", "get_batch_with_options", request)
        return Answer(attempts, body["RequestId"], batch=body["Batch"])  # checked: a Batch in one of the five states

    def update_batch(self, project: str, batch_id: str, changes: dict[str, Any]) -> Answer:
        request = _build(update_request, project, batch_id, changes)
        body, attempts = self._call("UpdateBatch", "update_batch_with_options", request)
        return Answer(attempts, body["RequestId"])

    def resume_batch(self, project: str, batch_id: str) -> Answer:
        request = _build(lambda m: m.ResumeBatchRequest(project_name=project, id=batch_id))
        body, attempts = self._call("ResumeBatch", "resume_batch_with_options", request)
        return Answer(attempts, body["RequestId"])

    def list_batches(
        self, project: str, state: str | None, tag_selector: str | None, next_token: str | None, max_results: int = 100
    ) -> Answer:
        """One page of ListBatches (IMM: MaxResults 0-100, NextToken for the next page)."""
        request = _build(
            lambda m: m.ListBatchesRequest(
                project_name=project,
                state=state,
                tag_selector=tag_selector,
                next_token=next_token,
                max_results=max_results,
            )
        )
        # Checked: every listed batch has an Id and one of the five states.
        body, attempts = self._call("ListBatches", "list_batches_with_options", request)
        batches = list(body.get("Batches") or [])
        return Answer(attempts, body["RequestId"], batches=batches, next_token=body.get("NextToken") or None)

    # -- one call, with its retries -------------------------------------------------------------------------------
    def _call(self, action: str, method: str, request: Any) -> tuple[dict[str, Any], int]:
        """IMM's checked answer body to the SDK client's `method` (e.g. `update_batch_with_options`) called with
        `request`, with retries; and the number of attempts."""

        def attempt(left_s: float) -> Any:
            if self.pacer is not None:
                if not self.pacer.acquire(self.deadline.expires_at - retry.MIN_ATTEMPT_S):
                    # Not retried here (a later turn is later still): throttled, the platform retries the item; or,
                    # when the pace itself is too slow for this invocation's time, a configuration error (`failed`,
                    # retried too: it succeeds once the setting or the timeout is changed). Never faster than the
                    # configured pace: IMM_MAX_QPS is the user's share of the account's quota.
                    refused = (
                        ImmError(Kind.THROTTLE, "RateLimited", "IMM_MAX_QPS leaves no slot for this call in time")
                        if ratelimit.fits(self.pacer.interval, self.deadline.budget_s)
                        else _pace_too_slow(self.pacer.interval, self.deadline.budget_s)
                    )
                    refused.retriable = False
                    refused.extra["not_sent"] = True
                    raise refused
                left_s = self.deadline.expires_at - time.monotonic()  # what the wait for the turn left
            runtime = _runtime_options(
                *attempt_timeouts(int(left_s * 1000), self.connect_timeout_ms, self.read_timeout_ms)
            )
            used = self.credentials  # the keys this attempt signs with (client_for reads them)
            _answers.body = None
            error: ImmError | None = None
            try:
                getattr(client_for(self), method)(request, runtime)
            except Exception as exc:
                error = classify(exc)  # not the exception itself, which holds the signed request
            if _answers.body is not None:
                # IMM's checked answer, as sent, whatever the SDK did with it afterwards: its response model is not
                # read, since `DaraCore.from_map` leaves it half built (`body` None) when the answer holds a shape
                # the model does not expect (an Actions item that is not an object).
                return _answers.body
            if error is None:
                error = ImmError(Kind.LOCAL, "ClientError", "the IMM SDK returned without an answer")
            if error.kind is Kind.TOKEN_EXPIRED and self.refresh_credentials is not None:
                with _refresh_lock:
                    # Fetched once per invocation; a call of another thread refused with the same old keys
                    # retries with the ones already fetched (it never signed with them).
                    first = not self._refreshed
                    self._refreshed = True
                    if first:
                        try:
                            self.credentials = self.refresh_credentials()
                        except Exception:  # none to be had now (CredentialsUnavailable): `failed`, redelivered
                            first = False
                    newer = self.credentials is not used and self.credentials.cache_key != used.cache_key
                if first or newer:  # new keys: try again at once (a retriable error the retry loop does not wait for)
                    error.retriable = True
                    error.extra["immediate"] = True
            raise error

        try:
            return retry.call(
                attempt,
                policy=self.policy,
                deadline=self.deadline,
                budget=self.budget,
                what=f"to call IMM {action}",
                sleep=self.sleep,
            )
        except ImmError as error:
            error.extra.setdefault("attempts", 0)
            if error.extra.pop("not_sent", False):  # the last attempt made no call: `attempts` counts IMM calls
                error.extra["attempts"] -= 1
            raise
        except CallError as error:  # DeadlineExceeded from the retry helper
            raise _as_imm_error(error) from None


def _build(make: Callable[..., Any], *args: Any) -> Any:
    """`make(models, *args)`: an SDK request model, or ImmError LOCAL when it cannot be built."""
    try:
        return make(_models(), *args)
    except Exception as exc:  # a bug on this side: final, IMM never sees it
        raise ImmError(Kind.LOCAL, "RequestNotBuilt", f"the request could not be built: {type(exc).__name__}") from None


def _as_imm_error(error: CallError) -> ImmError:
    converted = ImmError(Kind.RETRY, error.code, error.message)
    converted.extra.update(error.extra)
    return converted


def update_request(models: Any, project: str, batch_id: str, changes: dict[str, Any]) -> Any:
    """UpdateBatchRequest for the fields `changes` gives (validated document shapes); the others stay None and are
    not sent (see the module docstring for why not `from_map`)."""
    input_model = None
    if "Input" in changes:
        oss = changes["Input"]["OSS"]
        input_model = models.Input(
            oss=models.InputOSS(
                bucket=oss["Bucket"], prefix=oss.get("Prefix"), match_expressions=oss.get("MatchExpressions")
            )
        )
    actions = None
    if "Actions" in changes:
        actions = [
            models.UpdateBatchRequestActions(name=a["Name"], parameters=a.get("Parameters")) for a in changes["Actions"]
        ]
    return models.UpdateBatchRequest(
        project_name=project, id=batch_id, input=input_model, actions=actions, tags=changes.get("Tags")
    )


def attempt_timeouts(remaining_ms: int, connect_timeout_ms: int, read_timeout_ms: int) -> tuple[int, int]:
    """(read, connect) timeouts in ms for one attempt: the configured ones, cut so that a connect that hangs and
    then a read that hangs still end within `remaining_ms` (each is at least 100 ms; attempts start only with
    MIN_ATTEMPT_S left). The connect gets at most a third of what is left: it normally takes milliseconds. The
    watchdog bounds the call as a whole (a peer that trickles its answer passes any per-read timeout)."""
    # max(100, min(...)) written as comparisons: the builtins cost more than the rest (Deadline.for_timeout says why).
    third = remaining_ms // 3
    connect = connect_timeout_ms if connect_timeout_ms < third else third
    connect = connect if connect > 100 else 100
    rest = remaining_ms - connect
    read = read_timeout_ms if read_timeout_ms < rest else rest
    read = read if read > 100 else 100
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


def client_for(imm: ImmClient) -> Any:
    """The SDK client for these endpoint and credentials, reused across invocations of this instance."""
    global _clients_last
    creds = imm.credentials
    key = (imm.endpoint, imm.region, creds.cache_key)
    last = _clients_last
    if last is not None and last[0] == key:  # the common case: the same keys as the previous call
        return last[1]
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            from alibabacloud_tea_openapi.models import Config

            client = _client_class()(
                Config(
                    access_key_id=creds.access_key_id,
                    access_key_secret=creds.access_key_secret,
                    security_token=creds.security_token,
                    endpoint=imm.endpoint.host,
                    protocol=imm.endpoint.scheme,
                    region_id=imm.region,
                    connect_timeout=imm.connect_timeout_ms,
                    read_timeout=imm.read_timeout_ms,
                )
            )
            _clients[key] = client
            while len(_clients) > MAX_CLIENTS:
                _clients.popitem(last=False)
        _clients.move_to_end(key)
        # One tuple, replaced whole: readers without the lock see the old or the new one, never a mix.
        _clients_last = (key, client)
    return client
