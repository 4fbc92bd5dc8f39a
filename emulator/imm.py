"""IMM 2020-09-30 batch API (CreateBatch … DeleteBatch) as the POP gateway and IMM answer it.

Wire shapes, error codes and state rules follow the IMM 2020-09-30 API reference (CreateBatch ... DeleteBatch,
"Error codes") and what the IMM SDK sends. The store is in memory behind one lock;
tests reach it directly through the inspection methods (`create_batch`, `create_batches`, `set_state`,
`progress`, …) instead of going through the wire, so they can set up states that the public API cannot reach
(Running, Failed).

What IMM cannot store is refused, never stored (issue #10), each 400 naming the parameter and never echoing the
value:

- a form or query value that is not UTF-8 once percent-decoded (invalid bytes, or surrogate code points
  written as UTF-8, `%ED%A0%80`): `InvalidArgument`;
- a JSON parameter (Input, Actions, Tags, Notification, any other) that is not JSON, `NaN`, `Infinity` and
  `-Infinity` included: `InvalidJSON` (IMM's code for a JSON parameter it cannot parse, "Array parsing error,
  {ParameterName}", https://www.alibabacloud.com/help/en/imm/developer-reference/error-handling-1);
- JSON that parses but cannot be stored: a number that overflows a double (`1e400`, a 400-digit integer), a
  duplicate key in any object, a lone UTF-16 surrogate written as an escape (`"\ud800"`): `InvalidArgument`;
- a name with a control character (C0 U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F; so also a trailing newline):
  every plain parameter (ProjectName, Id, ServiceRole, State, Sort, Order, TagSelector, ...), `Input.OSS.Bucket`
  and `Actions[].Name`: `InvalidArgument`.

IMM's own wording for these is not published; the codes are IMM's documented generic ones (same page). Every
2xx answer is a JSON object carrying `RequestId` (and the `x-acs-request-id` header), as every IMM response
example shows.
"""

from __future__ import annotations

import base64
import binascii
import copy
import heapq
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from emulator.server import Keyring, Request, Response
from emulator.signature import NonceCache, parse_timestamp, verify_request

API_VERSION = "2020-09-30"
STATES = ("Ready", "Running", "Failed", "Suspended", "Succeeded")
DEFAULT_SERVICE_ROLE = "AliyunIMMBatchTriggerRole"
JSON_FIELDS = ("Input", "Actions", "Tags", "Notification")
# Which states each mutating operation accepts (IMM API reference, §1.4 of the notes).
ALLOWED_STATES: dict[str, frozenset[str]] = {
    "UpdateBatch": frozenset({"Ready", "Failed"}),
    "SuspendBatch": frozenset({"Running"}),
    "ResumeBatch": frozenset({"Suspended", "Failed"}),
    "DeleteBatch": frozenset({"Ready", "Failed", "Suspended", "Succeeded"}),
}
BATCH_FIELD_ORDER = (
    "Id",
    "Input",
    "Actions",
    "Notification",
    "ServiceRole",
    "State",
    "Statistic",
    "Tags",
    "CreateTime",
    "UpdateTime",
    "Error",
    "Marker",
    "Phase",
)
DEFAULT_INPUT: dict[str, Any] = {"OSS": {"Bucket": "demo-bucket", "Prefix": "incoming/"}}
DEFAULT_ACTIONS: list[dict[str, Any]] = [{"Name": "doc/convert", "Parameters": ["pages=3"]}]


class ImmError(Exception):
    """An IMM error answer; raised anywhere below `handle` and rendered by `error_response`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _invalid(message: str) -> ImmError:
    return ImmError(400, "InvalidArgument", message)


def _missing(name: str) -> ImmError:
    return _invalid(f"The parameter {name} is required but not provided.")


PROJECT_NOT_FOUND = ("ResourceNotFound", "The specified resource project is not found.")
BATCH_NOT_FOUND = ("ResourceNotFound", "The specified resource batch is not found.")


@dataclass
class WrongStateError:
    """How a refusal for the batch state is answered; IMM's exact answer is undocumented, so tests vary it.

    `message` is a format string with `{action}`, `{state}`, `{id}` and `{project}`.
    """

    status: int = 400
    code: str = "InvalidArgument"
    message: str = "The operation {action} is not allowed when the batch state is {state}."


@dataclass
class Progression:
    """A server-side state change: batches in `state_from` move to `to` after some reads or some time.

    `after_reads=N`: the first N GetBatch/ListBatches reads in `state_from` still see it, the next one sees `to`.
    `after_seconds=T`: any access T seconds (of `ImmService.clock`) after entering `state_from` sees `to`.
    `project`/`batch_id` narrow it to some batches; `error` is the Error text set when `to` is Failed.
    """

    state_from: str
    to: str
    after_reads: int | None = None
    after_seconds: float | None = None
    error: str | None = None
    project: str | None = None
    batch_id: str | None = None

    def applies_to(self, project: str, batch: _Batch) -> bool:
        return (
            batch.data["State"] == self.state_from
            and (self.project is None or self.project == project)
            and (self.batch_id is None or self.batch_id == batch.data["Id"])
        )


@dataclass
class _Batch:
    data: dict[str, Any]  # the DataIngestion object as GetBatch returns it
    seq: int  # creation order, the tie-breaker for sorting
    created: float
    updated: float
    state_since: float
    reads: int = 0  # reads since entering the current state


@dataclass
class _Project:
    batches: dict[str, _Batch] = field(default_factory=dict)


def format_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


# -- parameter parsing ---------------------------------------------------------------------------------------------


# C0 controls, DEL and C1 controls: never part of a name IMM stores (a trailing newline included).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _form_pairs(raw: bytes) -> list[tuple[str, str]]:
    """`a=b&c=d` (query or urlencoded body) decoded strictly: `+` is a space, %XX bytes must form UTF-8.

    Unlike `parse_qsl`, which puts U+FFFD in place of bytes that are not UTF-8, a name or value that does not
    decode is refused, naming the parameter (a name that does not decode is named by its position).
    """
    pairs = []
    for index, item in enumerate(raw.split(b"&")):
        if not item:
            continue
        raw_name, _, raw_value = item.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"The name of parameter #{index + 1} is not valid UTF-8.") from None
        try:
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"The parameter {_printable(name)} is not valid UTF-8.") from None
        pairs.append((name, value))
    return pairs


def _printable(name: str) -> str:
    """A parameter name fit for an error message: control characters escaped, at most 64 characters."""
    shown = name.encode("unicode_escape").decode("ascii") if _CONTROL.search(name) else name
    return shown if len(shown) <= 64 else shown[:61] + "..."


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:  # which value counts would be a guess: the SDKs never send a name twice
            raise _invalid(f"The parameter {_printable(name)} is given more than once.")
        params[name] = value
    return params


def request_params(request: Request) -> dict[str, str]:
    """Query parameters merged with the urlencoded form body (the SDK uses one or the other per action).

    The server hands the query over as latin-1 text (http.server decodes the request line so), i.e. the raw bytes.
    """
    try:
        raw_query = request.query.encode("latin-1")
    except UnicodeEncodeError:  # a Request built in-process with text beyond latin-1
        raw_query = request.query.encode("utf-8", "surrogateescape")
    params = _unique(_form_pairs(raw_query))
    if request.body and "json" not in request.header("content-type"):
        params.update(_unique(_form_pairs(request.body)))
    return params


def check_names(params: dict[str, str]) -> None:
    """Plain (non-JSON) parameters must not hold control characters: IMM's names and enums never do."""
    for name, value in params.items():
        if name.split(".", 1)[0] in JSON_FIELDS:
            continue  # JSON values are checked field by field once decoded
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise _invalid(f"The parameter {_printable(name)} contains a control character.")


def _unflatten(params: dict[str, str], name: str) -> Any:
    """The old flattened form (`Actions.1.Name`, `Input.OSS.Bucket`, `Tags.env`) rebuilt as a JSON value."""
    root: dict[str, Any] = {}
    prefix = name + "."
    for key, value in params.items():
        if not key.startswith(prefix):
            continue
        node = root
        parts = key[len(prefix) :].split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise _invalid(f"The parameter {name} is not valid.")
        node[parts[-1]] = value

    def listify(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        items = {k: listify(v) for k, v in node.items()}
        if items and name != "Tags" and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items

    return listify(root) if root else None


class _NotJson(Exception):
    """Raised from the decoder's hooks for `NaN`, `Infinity` and `-Infinity`: not JSON (RFC 8259 §6)."""


class _Unstorable(Exception):
    """JSON that parses but that IMM cannot store; the message says why, without the value."""


def _no_constant(_: str) -> Any:
    raise _NotJson


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Unstorable("a number is out of the range of a double")
    return value


def _finite_int(text: str) -> int:
    if len(text) > 400:  # longer than any double, and int() refuses > 4300 digits on 3.11+
        raise _Unstorable("a number is out of the range of a double")
    value = int(text)
    if abs(value) > 1.7976931348623157e308:
        raise _Unstorable("a number is out of the range of a double")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Unstorable("an object has a duplicate key")
        result[key] = value
    return result


def strict_json(text: str, name: str) -> Any:
    """Decode one JSON parameter as IMM can store it (see the module docstring for what is refused)."""
    try:
        value = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_finite_int,
            object_pairs_hook=_unique_keys,
        )
    except _Unstorable as exc:
        raise _invalid(f"The parameter {name} is not valid: {exc}.") from None
    except (_NotJson, ValueError, RecursionError):
        raise ImmError(400, "InvalidJSON", f"The parameter {name} is not valid JSON.") from None
    try:
        # Escapes such as "\ud800" decode to lone surrogates, which no UTF-8 store can hold.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        message = f"The parameter {name} is not valid: a string is not valid Unicode (a lone surrogate)."
        raise _invalid(message) from None
    return value


def json_param(params: dict[str, str], name: str) -> Any:
    """A JSON-string parameter decoded strictly (None when absent); the flattened form is accepted too."""
    raw = params.get(name)
    if raw is None:
        return _unflatten(params, name)
    return strict_json(raw, name)


def _check_name(value: str, where: str) -> None:
    if _CONTROL.search(value):
        raise _invalid(f"The parameter {where} contains a control character.")


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"The parameter {where} must be an array of strings.")
    return list(value)


def validate_input(value: Any) -> dict[str, Any]:
    """Input = {"OSS": {"Bucket", "Prefix", "MatchExpressions"}}; unknown keys are dropped like IMM's decoder."""
    oss = value.get("OSS") if isinstance(value, dict) else None
    if not isinstance(oss, dict):
        raise _invalid("The parameter Input must be an object with an OSS member.")
    bucket = oss.get("Bucket")
    if not isinstance(bucket, str) or not bucket:
        raise _invalid("The parameter Input.OSS.Bucket is required but not provided.")
    _check_name(bucket, "Input.OSS.Bucket")
    result: dict[str, Any] = {"Bucket": bucket}
    if "Prefix" in oss:
        if not isinstance(oss["Prefix"], str):
            raise _invalid("The parameter Input.OSS.Prefix must be a string.")
        result["Prefix"] = oss["Prefix"]
    if "MatchExpressions" in oss:
        result["MatchExpressions"] = _str_list(oss["MatchExpressions"], "Input.OSS.MatchExpressions")
    return {"OSS": result}


def validate_actions(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _invalid("The parameter Actions must be a non-empty array.")
    actions = []
    for i, item in enumerate(value):
        name = item.get("Name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid(f"The parameter Actions[{i}].Name is required but not provided.")
        _check_name(name, f"Actions[{i}].Name")
        action: dict[str, Any] = {"Name": name}
        if item.get("Parameters") is not None:
            action["Parameters"] = _str_list(item["Parameters"], f"Actions[{i}].Parameters")
        policy = item.get("FastFailPolicy")
        if policy is not None:
            if not isinstance(policy, dict) or policy.get("Action") not in ("abort", "ignore"):
                raise _invalid(f"The parameter Actions[{i}].FastFailPolicy.Action must be abort or ignore.")
            action["FastFailPolicy"] = {"Action": policy["Action"]}
        actions.append(action)
    return actions


def validate_tags(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float | bool) for v in value.values()):
        raise _invalid("The parameter Tags must be an object of string, number or boolean values.")
    return dict(value)


def validate_notification(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("The parameter Notification must be an object.")
    return copy.deepcopy(value)


# -- the service ---------------------------------------------------------------------------------------------------


class ImmService:
    """The IMM batch API plus an in-process API for tests (all methods thread-safe).

    Attributes tests may set: `wrong_state_error` (a `WrongStateError`), `clock` (a time.time-like callable for
    CreateTime/UpdateTime and `after_seconds` progressions; signatures always use real time), `verify_signatures`.
    """

    name = "imm"

    def __init__(self, keyring: Keyring, region: str = "cn-hangzhou") -> None:
        self.keyring = keyring
        self.region = region
        self.host_id = f"imm.{region}.aliyuncs.com"
        self.nonces = NonceCache()
        self.verify_signatures = True
        self.wrong_state_error = WrongStateError()
        self.clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._projects: dict[str, _Project] = {}
        self._progressions: list[Progression] = []
        self._seq = itertools.count()
        self._handlers: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "CreateBatch": self._create_batch,
            "GetBatch": self._get_batch,
            "ListBatches": self._list_batches,
            "UpdateBatch": self._update_batch,
            "SuspendBatch": self._suspend_batch,
            "ResumeBatch": self._resume_batch,
            "DeleteBatch": self._delete_batch,
        }

    # -- Service protocol ------------------------------------------------------------------------------------
    def matches(self, request: Request) -> bool:
        return bool(request.header("x-acs-action")) or "Action" in request.query_params

    def action_of(self, request: Request) -> str:
        return request.header("x-acs-action") or request.query_params.get("Action", "")

    def error_response(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> Response:
        request_id = request_id or new_request_id()
        body = {
            "RequestId": request_id,
            "HostId": self.host_id,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=imm&requestId={request_id}",
        }
        return self._json(status, body, request_id, headers)

    def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            if self.verify_signatures:
                auth_error = verify_request(request, self.keyring, nonces=self.nonces)
                if auth_error is not None:
                    raise ImmError(*auth_error)
            version = request.header("x-acs-version") or request.query_params.get("Version", "")
            if version != API_VERSION:
                raise ImmError(400, "InvalidVersion", "Specified parameter Version is not valid.")
            handler = self._handlers.get(self.action_of(request))
            if handler is None:
                raise ImmError(
                    404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
                )
            params = request_params(request)
            check_names(params)
            body = handler(params)
        except ImmError as exc:
            return self.error_response(exc.status, exc.code, exc.message, request_id=request_id)
        return self._json(200, {**body, "RequestId": request_id}, request_id)

    @staticmethod
    def _json(status: int, body: dict[str, Any], request_id: str, headers: dict[str, str] | None = None) -> Response:
        all_headers = {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id}
        all_headers.update(headers or {})
        return Response(status, all_headers, json.dumps(body, ensure_ascii=False).encode("utf-8"))

    # -- store helpers (call with the lock held) -------------------------------------------------------------
    def _project(self, name: str) -> _Project:
        project = self._projects.get(name)
        if project is None:
            raise ImmError(404, *PROJECT_NOT_FOUND)
        return project

    def _batch(self, project: str, batch_id: str, *, reading: bool = False) -> _Batch:
        batch = self._project(project).batches.get(batch_id)
        if batch is None:
            raise ImmError(404, *BATCH_NOT_FOUND)
        self._advance(project, batch, reading=reading)
        return batch

    def _enter_state(self, batch: _Batch, state: str, error: str | None = None) -> None:
        now = self.clock()
        batch.data["State"] = state
        batch.state_since = now
        batch.reads = 0
        batch.updated = now
        batch.data["UpdateTime"] = format_time(now)
        if error is None:
            batch.data.pop("Error", None)
        else:
            batch.data["Error"] = error

    def _advance(self, project: str, batch: _Batch, *, reading: bool) -> None:
        """Apply the configured progressions; a read counts towards `after_reads` only if nothing fires."""
        for _ in range(len(self._progressions) + 1):
            fired = None
            for rule in self._progressions:
                if not rule.applies_to(project, batch):
                    continue
                timed_out = rule.after_seconds is not None and self.clock() - batch.state_since >= rule.after_seconds
                read_out = reading and rule.after_reads is not None and batch.reads >= rule.after_reads
                if timed_out or read_out:
                    fired = rule
                    break
            if fired is None:
                break
            error = (fired.error or "emulated failure") if fired.to == "Failed" else None
            self._enter_state(batch, fired.to, error)
        if reading:
            batch.reads += 1

    def _check_state(self, action: str, project: str, batch: _Batch) -> None:
        state = batch.data["State"]
        if state not in ALLOWED_STATES[action]:
            cfg = self.wrong_state_error
            message = cfg.message.format(action=action, state=state, id=batch.data["Id"], project=project)
            raise ImmError(cfg.status, cfg.code, message)

    def _new_batch(
        self,
        batch_id: str,
        *,
        state: str,
        input: dict[str, Any],
        actions: list[dict[str, Any]],
        tags: dict[str, Any] | None,
        notification: dict[str, Any] | None,
        service_role: str,
        error: str | None = None,
        statistic: dict[str, int] | None = None,
        create_time: str | None = None,
        update_time: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> _Batch:
        if state not in STATES:
            raise ValueError(f"unknown batch state {state!r}; one of {STATES}")
        now = self.clock()
        created = parse_timestamp(create_time) if create_time else now
        updated = parse_timestamp(update_time) if update_time else created
        if created is None or updated is None:
            raise ValueError("CreateTime/UpdateTime must look like 2026-01-01T00:00:00Z")
        data: dict[str, Any] = {
            "Id": batch_id,
            "Input": input,
            "Actions": actions,
            "Notification": notification,
            "ServiceRole": service_role,
            "State": state,
            "Statistic": {"SubmitSuccess": 0, "SubmitFailure": 0, "SkipFiles": 0, **(statistic or {})},
            "Tags": tags,
            "CreateTime": format_time(created),
            "UpdateTime": format_time(updated),
            "Error": error,
            **(extra or {}),
        }
        data = {k: data[k] for k in BATCH_FIELD_ORDER if data.get(k) is not None}
        return _Batch(data=data, seq=next(self._seq), created=created, updated=updated, state_since=now)

    @staticmethod
    def _required(params: dict[str, str], *names: str) -> list[str]:
        values = []
        for name in names:
            value = params.get(name, "")
            if not value:
                raise _missing(name)
            values.append(value)
        return values

    # -- API handlers ----------------------------------------------------------------------------------------
    def _create_batch(self, params: dict[str, str]) -> dict[str, Any]:
        (project,) = self._required(params, "ProjectName")
        raw_input, raw_actions = json_param(params, "Input"), json_param(params, "Actions")
        if raw_input is None:
            raise _missing("Input")
        if raw_actions is None:
            raise _missing("Actions")
        input_, actions = validate_input(raw_input), validate_actions(raw_actions)
        raw_tags, raw_notification = json_param(params, "Tags"), json_param(params, "Notification")
        tags = None if raw_tags is None else validate_tags(raw_tags)
        notification = None if raw_notification is None else validate_notification(raw_notification)
        batch_id = f"batch-{uuid.uuid4()}"
        with self._lock:
            store = self._project(project)
            store.batches[batch_id] = self._new_batch(
                batch_id,
                state="Ready",
                input=input_,
                actions=actions,
                tags=tags,
                notification=notification,
                service_role=params.get("ServiceRole") or DEFAULT_SERVICE_ROLE,
            )
        return {"Id": batch_id}

    def _get_batch(self, params: dict[str, str]) -> dict[str, Any]:
        project, batch_id = self._required(params, "ProjectName", "Id")
        with self._lock:
            return {"Batch": copy.deepcopy(self._batch(project, batch_id, reading=True).data)}

    def _list_batches(self, params: dict[str, str]) -> dict[str, Any]:
        """ListBatches as documented (https://www.alibabacloud.com/help/en/imm/developer-reference/
        api-imm-2020-09-30-listbatches): MaxResults 0-100 (0 or absent: 100), State one of the five states,
        TagSelector `key=value`, Sort CreateTime|UpdateTime, Order ASC (default)|DES, an opaque NextToken; each
        listed batch is the whole DataIngestion object, as GetBatch returns it."""
        (project,) = self._required(params, "ProjectName")
        max_results = _parse_max_results(params.get("MaxResults", ""))
        sort = params.get("Sort") or "CreateTime"
        if sort not in ("CreateTime", "UpdateTime"):
            raise _invalid("The parameter Sort must be CreateTime or UpdateTime.")
        order = (params.get("Order") or "ASC").upper()
        if order not in ("ASC", "DES", "DESC"):
            raise _invalid("The parameter Order must be ASC or DES.")
        descending = order != "ASC"
        state = params.get("State", "")
        if state and state not in STATES:
            raise _invalid(f"The parameter State must be one of {', '.join(STATES)}.")
        selector = params.get("TagSelector", "")
        wanted = parse_tag_selector(selector)
        listing = [project, sort, descending, state, selector]
        cursor = _decode_token(params.get("NextToken", ""), listing)
        with self._lock:
            batches = list(self._project(project).batches.values())
            if self._progressions:
                for batch in batches:
                    self._advance(project, batch, reading=True)
            else:  # the common case, kept cheap for projects with thousands of batches
                for batch in batches:
                    batch.reads += 1
            keyed = [
                ((b.created if sort == "CreateTime" else b.updated, b.seq), b)
                for b in batches
                if (not state or b.data["State"] == state) and _tag_match(b.data.get("Tags"), wanted)
            ]
            if cursor is not None:
                keyed = [kb for kb in keyed if (kb[0] < cursor if descending else kb[0] > cursor)]
            page = (
                heapq.nlargest(max_results + 1, keyed, key=_first)
                if descending
                else heapq.nsmallest(max_results + 1, keyed, key=_first)
            )
            more = len(page) > max_results
            page = page[:max_results]
            body: dict[str, Any] = {"Batches": [_copy(b.data) for _, b in page]}
            body["NextToken"] = _encode_token(listing, page[-1][0]) if more else ""
        return body

    def _update_batch(self, params: dict[str, str]) -> dict[str, Any]:
        project, batch_id = self._required(params, "ProjectName", "Id")
        changes: dict[str, Any] = {}
        for name, validate in (("Input", validate_input), ("Actions", validate_actions), ("Tags", validate_tags)):
            raw = json_param(params, name)
            if raw is not None:
                changes[name] = validate(raw)
        with self._lock:
            batch = self._batch(project, batch_id)
            self._check_state("UpdateBatch", project, batch)
            batch.data.update(changes)
            batch.data = {k: batch.data[k] for k in BATCH_FIELD_ORDER if k in batch.data}
            batch.updated = self.clock()
            batch.data["UpdateTime"] = format_time(batch.updated)
        return {}

    def _transition(self, action: str, params: dict[str, str], to: str) -> dict[str, Any]:
        project, batch_id = self._required(params, "ProjectName", "Id")
        with self._lock:
            batch = self._batch(project, batch_id)
            self._check_state(action, project, batch)
            self._enter_state(batch, to)
        return {}

    def _suspend_batch(self, params: dict[str, str]) -> dict[str, Any]:
        return self._transition("SuspendBatch", params, "Suspended")

    def _resume_batch(self, params: dict[str, str]) -> dict[str, Any]:
        return self._transition("ResumeBatch", params, "Running")

    def _delete_batch(self, params: dict[str, str]) -> dict[str, Any]:
        project, batch_id = self._required(params, "ProjectName", "Id")
        with self._lock:
            batch = self._batch(project, batch_id)
            self._check_state("DeleteBatch", project, batch)
            del self._projects[project].batches[batch_id]
        return {}

    # -- in-process API for tests ----------------------------------------------------------------------------
    def create_project(self, name: str) -> None:
        """Create a project (no-op if it exists)."""
        with self._lock:
            self._projects.setdefault(name, _Project())

    def delete_project(self, name: str) -> None:
        with self._lock:
            self._projects.pop(name, None)

    def projects(self) -> list[str]:
        with self._lock:
            return sorted(self._projects)

    def create_batch(
        self,
        project: str,
        *,
        id: str | None = None,
        state: str = "Ready",
        input: dict[str, Any] | None = None,
        actions: list[dict[str, Any]] | None = None,
        tags: dict[str, Any] | None = None,
        notification: dict[str, Any] | None = None,
        service_role: str = DEFAULT_SERVICE_ROLE,
        error: str | None = None,
        statistic: dict[str, int] | None = None,
        create_time: str | None = None,
        update_time: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Add a batch in any state (the project is created if missing); returns its Id.

        `extra` sets further DataIngestion fields such as Marker or Phase.
        """
        batch_id = id or f"batch-{uuid.uuid4()}"
        batch_input = validate_input(copy.deepcopy(input if input is not None else DEFAULT_INPUT))
        batch_actions = validate_actions(copy.deepcopy(actions if actions is not None else DEFAULT_ACTIONS))
        with self._lock:
            store = self._projects.setdefault(project, _Project())
            if batch_id in store.batches:
                raise ValueError(f"batch {batch_id} already exists in {project}")
            store.batches[batch_id] = self._new_batch(
                batch_id,
                state=state,
                input=batch_input,
                actions=batch_actions,
                tags=copy.deepcopy(tags),
                notification=copy.deepcopy(notification),
                service_role=service_role,
                error=error,
                statistic=statistic,
                create_time=create_time,
                update_time=update_time,
                extra=copy.deepcopy(extra),
            )
        return batch_id

    def create_batches(
        self,
        project: str,
        n: int,
        *,
        state: str | Callable[[int], str] = "Ready",
        tags: dict[str, Any] | Callable[[int], dict[str, Any] | None] | None = None,
        input: dict[str, Any] | None = None,
        actions: list[dict[str, Any]] | None = None,
        id_prefix: str = "batch-",
    ) -> list[str]:
        """Add `n` batches at once (the project is created if missing); returns their Ids in creation order.

        `state` and `tags` are a value for all, or a function of the index 0..n-1, e.g.
        `create_batches("p", 300, state=lambda i: "Failed" if i % 3 else "Ready", tags=lambda i: {"tier": ...})`.
        Ids are `id_prefix` + a UUID. One lock and one validation for all: a few thousand take well under a second.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        batch_input = validate_input(copy.deepcopy(input if input is not None else DEFAULT_INPUT))
        batch_actions = validate_actions(copy.deepcopy(actions if actions is not None else DEFAULT_ACTIONS))
        ids = []
        with self._lock:
            store = self._projects.setdefault(project, _Project())
            for i in range(n):
                batch_id = f"{id_prefix}{uuid.uuid4()}"
                batch_tags = tags(i) if callable(tags) else tags
                store.batches[batch_id] = self._new_batch(
                    batch_id,
                    state=state(i) if callable(state) else state,
                    input=_copy(batch_input),
                    actions=[_copy(a) for a in batch_actions],
                    tags=None if batch_tags is None else _copy(batch_tags),
                    notification=None,
                    service_role=DEFAULT_SERVICE_ROLE,
                )
                ids.append(batch_id)
        return ids

    def get_batch(self, project: str, id: str) -> dict[str, Any]:
        """A deep copy of the batch as GetBatch would return it (time-based progressions apply, reads do not).

        Raises KeyError when the project or batch does not exist.
        """
        with self._lock:
            try:
                batch = self._batch(project, id)
            except ImmError as exc:
                raise KeyError(f"{project}/{id}: {exc.message}") from None
            return copy.deepcopy(batch.data)

    def has_batch(self, project: str, id: str) -> bool:
        with self._lock:
            return id in self._projects.get(project, _Project()).batches

    def list_batches(self, project: str) -> list[dict[str, Any]]:
        """Deep copies of every batch of a project, in creation order."""
        with self._lock:
            batches = sorted(self._project(project).batches.values(), key=lambda b: b.seq)
            for batch in batches:
                self._advance(project, batch, reading=False)
            return [copy.deepcopy(b.data) for b in batches]

    def set_state(self, project: str, id: str, state: str, error: str | None = None) -> None:
        """Move a batch to `state` as the service itself would (UpdateTime bumps; Error set or cleared)."""
        if state not in STATES:
            raise ValueError(f"unknown batch state {state!r}; one of {STATES}")
        with self._lock:
            try:
                batch = self._batch(project, id)
            except ImmError as exc:
                raise KeyError(f"{project}/{id}: {exc.message}") from None
            self._enter_state(batch, state, error)

    def set_statistic(self, project: str, id: str, **counts: int) -> None:
        """Set Statistic counters, e.g. set_statistic(p, i, SubmitSuccess=10)."""
        with self._lock:
            self._batch(project, id).data["Statistic"].update(counts)

    def delete_batch(self, project: str, id: str) -> None:
        with self._lock:
            self._projects.get(project, _Project()).batches.pop(id, None)

    def progress(
        self,
        state_from: str = "Running",
        to: str = "Succeeded",
        *,
        after_reads: int | None = None,
        after_seconds: float | None = None,
        error: str | None = None,
        project: str | None = None,
        batch_id: str | None = None,
    ) -> Progression:
        """Add a progression rule (see `Progression`); it stays until `clear_progressions`."""
        if state_from not in STATES or to not in STATES:
            raise ValueError(f"states must be among {STATES}")
        if after_reads is None and after_seconds is None:
            raise ValueError("give after_reads or after_seconds")
        rule = Progression(state_from, to, after_reads, after_seconds, error, project, batch_id)
        with self._lock:
            self._progressions.append(rule)
        return rule

    def progressions(self) -> list[Progression]:
        with self._lock:
            return list(self._progressions)

    def clear_progressions(self) -> None:
        with self._lock:
            self._progressions.clear()

    def set_wrong_state_error(
        self, status: int = 400, code: str = "InvalidArgument", message: str = WrongStateError.message
    ) -> None:
        """Change how wrong-state refusals are answered (message: format string, see `WrongStateError`)."""
        with self._lock:
            self.wrong_state_error = WrongStateError(status, code, message)

    def reset(self) -> None:
        """Forget every project, batch, progression and seen nonce; restore the default wrong-state answer."""
        with self._lock:
            self._projects.clear()
            self._progressions.clear()
            self.wrong_state_error = WrongStateError()
        self.nonces.clear()

    def load(self, data: dict[str, Any] | None) -> None:
        """Load the "imm" part of a seed: {"projects": {name: {"batches": [{Id, State, Input, ...}]}}}."""
        for project, spec in ((data or {}).get("projects") or {}).items():
            self.create_project(project)
            for item in (spec or {}).get("batches") or []:
                self.create_batch(
                    project,
                    id=item.get("Id"),
                    state=item.get("State", "Ready"),
                    input=item.get("Input"),
                    actions=item.get("Actions"),
                    tags=item.get("Tags"),
                    notification=item.get("Notification"),
                    service_role=item.get("ServiceRole", DEFAULT_SERVICE_ROLE),
                    error=item.get("Error"),
                    statistic=item.get("Statistic"),
                    create_time=item.get("CreateTime"),
                    update_time=item.get("UpdateTime"),
                    extra={k: item[k] for k in ("Marker", "Phase") if k in item},
                )


# -- ListBatches helpers ---------------------------------------------------------------------------------------


def _parse_max_results(raw: str) -> int:
    if raw == "":
        return 100
    try:
        value = int(raw)
    except ValueError:
        raise _invalid("The parameter MaxResults must be an integer.") from None
    if not 0 <= value <= 100:
        raise _invalid("The parameter MaxResults must be between 0 and 100.")
    return value or 100


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a batch (plain JSON data): a JSON round trip is several times faster than deepcopy."""
    return json.loads(json.dumps(data))


def parse_tag_selector(selector: str) -> tuple[str, str] | None:
    """TagSelector as IMM documents it: `key=value` (the example is `test=val1`; ListBatches, ListTriggers).

    None for an empty selector (no filter). A selector without `=` or with an empty key is refused 400
    `InvalidArgument`, naming TagSelector: IMM documents no other form (no bare key, no list), so a selector
    IMM may read differently is refused rather than guessed. The value is everything after the first `=`.
    """
    if not selector:
        return None
    key, sep, value = selector.partition("=")
    if not sep or not key.strip():
        raise _invalid("The parameter TagSelector is not valid: use key=value.")
    return key, value


def _tag_match(tags: dict[str, Any] | None, wanted: tuple[str, str] | None) -> bool:
    """The batch's tag `key` equals `value`, compared as text (a number 4 matches `n=4`, true matches `b=true`)."""
    if wanted is None:
        return True
    key, value = wanted
    if not tags or key not in tags:
        return False
    actual = tags[key]
    text = ("true" if actual else "false") if isinstance(actual, bool) else str(actual)
    return text == value


def _encode_token(listing: list[Any], cursor: tuple[float, int]) -> str:
    payload = json.dumps({"l": listing, "c": list(cursor)}, separators=(",", ":")).encode()
    return base64.b64encode(payload).decode()


def _decode_token(token: str, listing: list[Any]) -> tuple[float, int] | None:
    """The cursor in a NextToken; a token from another listing (other filters) is refused."""
    if not token:
        return None
    try:
        payload = json.loads(base64.b64decode(token, validate=True))
        if payload["l"] != listing:
            raise ValueError("token for another listing")
        value, seq = payload["c"]
        return float(value), int(seq)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid("The parameter NextToken is not valid.") from None
