"""Invoke another Function Compute function asynchronously with the outcomes of an invocation.

RESULT_FC_FUNCTION names the target:
- `name` or `name:qualifier`: an FC 3.0 function, invoked with `alibabacloud-fc20230330` (`InvokeFunction`,
  `POST /2023-03-30/functions/{name}/invocations`, ACS3-HMAC-SHA256, `x-fc-invocation-type: Async`);
- `service/function` or `service.qualifier/function`: an FC 2.0 function, invoked with `fc2` (aliyun-fc2, FC 2.0
  API only).

Endpoint: RESULT_FC_ENDPOINT, else `https://{account_id}.{region}.fc.aliyuncs.com` (`{region}-internal` with
IMM_NETWORK=vpc), where `region` is the function's own (`context.region`, else FC_REGION, never IMM_REGION); FC 3.0
requests are made for that region too. The target's event is `{"type": "imm_batch_updater.outcomes", "timestamp",
"data": {"request_id", "function", "source", "duration_ms", "results": [...]}}`; a delivery whose outcomes do not fit
FC's 128 KB async payload limit is split into several invocations. The target's own async retry and destinations
apply once FC has accepted (202) the invocation.

fc2 logs full request headers (the STS token included) with `logging.error(...)` on the *root* logger when a
call fails, and `logging.debug(...)` the string to sign. Named-logger settings cannot stop that, so `_fc2()`
points the `logging` name inside fc2's modules at a disabled logger; fc2's own retries (up to 5 connection
retries with 1-2-4-8-16 s backoff, far beyond the function's timeout) are turned off the same way: this sink
retries itself, within the invocation's time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imm_batch_updater.config import sink_filter, text
from imm_batch_updater.context import Context, Endpoint, EndpointUnknown, endpoint
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.sinks.base import (
    Invocation,
    SinkConfigError,
    SinkDeliveryError,
    deliver,
    notification_many,
    report_failure,
    result_of,
    select,
    truncate,
)
from imm_batch_updater.strictjson import dumps

name = "fc_function"
variables: tuple[str, ...] = ("RESULT_FC_FUNCTION", "RESULT_FC_ENDPOINT", "RESULT_FC_FILTER")
MAX_ASYNC_PAYLOAD_BYTES = 128 * 1024


@dataclass(frozen=True)
class Target:
    function: str
    qualifier: str | None = None
    service: str | None = None  # set for FC 2.0 targets

    @property
    def fc2(self) -> bool:
        return self.service is not None

    @classmethod
    def parse(cls, value: str) -> Target:
        value = value.strip()
        if "/" in value:
            service, _, function = value.partition("/")
            service, _, qualifier = service.partition(".")
            if not service or not function or "/" in function:
                raise ValueError("FC 2.0 targets are `service/function` or `service.qualifier/function`")
            return cls(function, qualifier or None, service)
        function, _, qualifier = value.partition(":")
        if not function:
            raise ValueError("RESULT_FC_FUNCTION names no function")
        return cls(function, qualifier or None)

    def names(self) -> set[str]:
        """How this target could be spelled as a function name in FC 3.0 (FC 2.0 functions are `svc$fn` there)."""
        return {self.function, f"{self.service}${self.function}"} if self.fc2 else {self.function}


@dataclass(frozen=True)
class Config:
    function: str
    endpoint: str | None = None
    filter: str | None = None
    name: str = name

    def build(self, ctx: Context) -> FcFunctionSink:
        try:
            target = Target.parse(self.function)
        except ValueError as exc:
            raise SinkConfigError(name, str(exc), refused=False) from None
        own = ctx.function_name
        if own and own in target.names():
            raise SinkConfigError(
                name,
                "RESULT_FC_FUNCTION is this function itself: every notification would be answered `invalid` and "
                "notified again; nothing is invoked",
                refused=True,
            )
        return FcFunctionSink(target, endpoint_for(self, ctx), self.filter or ctx.settings.sink_filter, ctx)


def configure(env: Mapping[str, str], warnings: list[str]) -> Config | None:
    function = text(env, "RESULT_FC_FUNCTION")
    if function is None:
        return None
    return Config(
        function,
        text(env, "RESULT_FC_ENDPOINT"),
        sink_filter(env, "RESULT_FC_FILTER", warnings),
    )


def endpoint_for(config: Config, ctx: Context) -> Endpoint:
    """Where the FC API is: RESULT_FC_ENDPOINT, else the account's endpoint (public or VPC) in the function's region."""
    try:
        return endpoint(
            "fc",
            config.endpoint,
            variable="RESULT_FC_ENDPOINT",
            region=ctx.region,  # the function's own region, not IMM_REGION
            account=ctx.account_id,
            network=ctx.settings.imm_network,
        )
    except EndpointUnknown as exc:
        raise SinkConfigError(name, f"RESULT_FC_FUNCTION is set but {exc}", refused=False) from None


# -- FC 3.0 ------------------------------------------------------------------------------------------------------
def classify_fc3(exc: BaseException) -> SinkDeliveryError:
    from darabonba.exceptions import ResponseException, UnretryableException

    if isinstance(exc, ResponseException):
        code = str(getattr(exc, "code", None) or "Unknown")
        status = getattr(exc, "status_code", None)
        retriable = (status is not None and (status >= 500 or status == 429)) or code.startswith(
            ("Throttling", "ResourceThrottled", "ServiceUnavailable", "InternalError")
        )
        return SinkDeliveryError(code, "FC refused the invocation", retriable=retriable, http_status=status)
    if isinstance(exc, (UnretryableException, OSError, TimeoutError)):
        return SinkDeliveryError("NetworkError", "no valid answer from FC", retriable=True)
    return SinkDeliveryError(type(exc).__name__, "could not invoke the function", retriable=False)


# -- FC 2.0 (fc2) ------------------------------------------------------------------------------------------------
_SILENCED = logging.getLogger("imm_batch_updater.sinks.fc2_silenced")
_SILENCED.addHandler(logging.NullHandler())
_SILENCED.propagate = False
_SILENCED.setLevel(logging.CRITICAL + 1)
_SILENCED.disabled = True


def _fc2() -> Any:
    """The fc2 module, with its root-logger calls and its own retries switched off (see the module docstring)."""
    import fc2
    import fc2.auth
    import fc2.client

    for module in (fc2.client, fc2.auth):
        if getattr(module, "logging", None) is not _SILENCED:
            module.logging = _SILENCED  # `logging.error(...)` now goes nowhere
    fc2.client.retries = 0
    named = logging.getLogger("fc2")  # in case a later fc2 logs through its named logger instead
    named.setLevel(logging.CRITICAL + 1)
    named.propagate = False
    return fc2


def classify_fc2(exc: BaseException) -> SinkDeliveryError:
    import requests

    fc2 = _fc2()
    if isinstance(exc, fc2.FcError):
        status = getattr(exc, "status_code", None)
        code = str(getattr(exc, "err_code", "") or (f"HTTP{status}" if status else "FcError"))
        if status == 200:  # an x-fc-error-type answer: the target ran and failed (sync only; not for Async)
            return SinkDeliveryError(code or "FunctionError", "the target function failed", retriable=False)
        retriable = isinstance(status, int) and (status >= 500 or status == 429)
        return SinkDeliveryError(code, "FC refused the invocation", retriable=retriable, http_status=status)
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        # fc2 parses an error answer as JSON before raising; a non-JSON error body ends here.
        return SinkDeliveryError("BadErrorResponse", "FC answered an error that is not JSON", retriable=True)
    if isinstance(exc, requests.exceptions.Timeout):
        return SinkDeliveryError("Timeout", "FC did not answer in time", retriable=True)
    if isinstance(exc, (requests.exceptions.RequestException, OSError)):
        return SinkDeliveryError("NetworkError", "no valid answer from FC", retriable=True)
    return SinkDeliveryError(type(exc).__name__, "could not invoke the function", retriable=False)


def _result_text(outcome: Outcome, invocation: Invocation, room: int) -> str:
    """One result as JSON; when it alone would not fit in `room` bytes (a diff of large actions, thousands of
    error details), it loses what can grow (diff, error details, a long error message) and says `truncated`,
    like the MNS topic sink's messages: FC refuses an async payload over 128 KB, which would lose it and every
    payload after it."""
    text = dumps(result_of(outcome, invocation))
    if len(text.encode("utf-8")) <= room:
        return text
    return dumps(truncate(result_of(outcome, invocation)))


def chunks(outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> list[bytes]:
    """Payloads of at most MAX_ASYNC_PAYLOAD_BYTES, in order. Each result is encoded once (linear in the
    delivery: a 10,000-batch fan-out is cut in milliseconds, not re-encoded per added result)."""
    envelope = dumps(notification_many([], invocation, duration_ms))
    marker = '"results":[]'
    cut = envelope.rindex(marker) + len(marker) - 1
    head, tail = envelope[:cut].encode("utf-8"), envelope[cut:].encode("utf-8")
    room = MAX_ASYNC_PAYLOAD_BYTES - len(head) - len(tail)
    payloads: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for outcome in outcomes:
        text = _result_text(outcome, invocation, room).encode("utf-8")
        extra = len(text) + (1 if current else 0)
        if current and size + extra > room:
            payloads.append(head + b",".join(current) + tail)
            current, size, extra = [], 0, len(text)
        current.append(text)
        size += extra
    if current:
        payloads.append(head + b",".join(current) + tail)
    return payloads


class FcFunctionSink:
    name = name

    def __init__(self, target: Target, where: Endpoint, filter: str, ctx: Context) -> None:
        self.target = target
        self.scheme = where.scheme
        self.host = where.host
        self.filter = filter
        self.ctx = ctx

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        chosen = select(outcomes, self.filter)
        if not chosen:
            return
        payloads = chunks(chosen, invocation, duration_ms)
        invoke = self._fc2_invoker() if self.target.fc2 else self._fc3_invoker()
        classify = classify_fc2 if self.target.fc2 else classify_fc3
        sent = 0
        try:
            for payload in payloads:

                def send(timeout_s: float, payload: bytes = payload) -> None:
                    invoke(payload, timeout_s)

                deliver(self.ctx, send, classify)
                sent += 1
        except SinkDeliveryError as error:
            report_failure(self.name, error, invocation.request_id, invoked=sent, total=len(payloads))
            raise

    def _fc3_invoker(self) -> Any:
        from alibabacloud_fc20230330 import models
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi.models import Config as OpenApiConfig
        from darabonba.runtime import RuntimeOptions

        creds = self.ctx.credentials()  # fresh for this invocation
        client = Client(
            OpenApiConfig(
                access_key_id=creds.access_key_id,
                access_key_secret=creds.access_key_secret,
                security_token=creds.security_token,
                endpoint=self.host,
                protocol=self.scheme,
                region_id=self.ctx.region,  # the FC endpoint's region: the function's
            )
        )

        def invoke(payload: bytes, timeout_s: float) -> None:
            ms = max(100, int(timeout_s * 1000))
            response = client.invoke_function_with_options(
                self.target.function,
                models.InvokeFunctionRequest(body=payload, qualifier=self.target.qualifier),
                models.InvokeFunctionHeaders(x_fc_invocation_type="Async"),
                RuntimeOptions(read_timeout=ms, connect_timeout=ms, autoretry=False),
            )
            status = getattr(response, "status_code", None)
            if not isinstance(status, int) or not 200 <= status < 300:
                raise SinkDeliveryError(
                    f"HTTP{status}", "FC did not accept the invocation", retriable=False, http_status=status
                )

        return invoke

    def _fc2_invoker(self) -> Any:
        fc2 = _fc2()
        creds = self.ctx.credentials()  # fresh for this invocation
        assert self.target.service is not None

        def invoke(payload: bytes, timeout_s: float) -> None:
            client = fc2.Client(
                endpoint=f"{self.scheme}://{self.host}",
                accessKeyID=creds.access_key_id,
                accessKeySecret=creds.access_key_secret,
                securityToken=creds.security_token or "",
                Timeout=(timeout_s, timeout_s),  # requests' (connect, read)
            )
            client.invoke_function(
                self.target.service,
                self.target.function,
                payload=payload,
                headers={"x-fc-invocation-type": "Async"},
                qualifier=self.target.qualifier,
            )

        return invoke
