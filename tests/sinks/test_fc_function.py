"""FC function sink: FC 3.0 through alibabacloud-fc20230330 and FC 2.0 through fc2, against a local receiver that
stands in for the FC API and checks each request's signature on receipt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.server import Keyring, Request
from emulator.signature import verify_acs3
from imm_batch_updater.config import Settings
from imm_batch_updater.outcome import Detail, ErrorInfo, Outcome, Status
from imm_batch_updater.sinks import fc_function
from imm_batch_updater.sinks.base import Invocation, SinkConfigError, result_of
from tests.conftest import _LOGGED, PROJECT, READY, RUNNING, StsKey, find_leaks
from tests.sinks.conftest import Received, Reply, log_records, messages

TAGS = {"Tags": {"owner": "media-team"}}
TWO = [{"ProjectName": PROJECT, "Id": READY, **TAGS}, {"ProjectName": PROJECT, "Id": RUNNING, **TAGS}]
ACCEPTED = Reply(202, headers={"x-fc-request-id": "fc-req-1"})
FC3_DENIED = Reply(
    403,
    json.dumps({"Code": "AccessDenied", "Message": "not allowed", "RequestId": "r-1"}).encode(),
    {"Content-Type": "application/json", "x-fc-request-id": "r-1"},
)
FC2_500 = Reply(
    500,
    json.dumps({"ErrorCode": "InternalServerError", "ErrorMessage": "boom"}).encode(),
    {"Content-Type": "application/json", "x-fc-request-id": "r-2"},
)


@pytest.fixture
def fc_env(fn_env, receiver):
    receiver.default = ACCEPTED
    fn_env.setenv("RESULT_FC_ENDPOINT", receiver.url)
    return fn_env


def verify_fc3(request: Received, sts: StsKey) -> None:
    keyring = Keyring()
    keyring.add(sts.access_key_id, sts.access_key_secret, sts.security_token)
    error = verify_acs3(Request(request.method, request.path, request.query, request.headers, request.body), keyring)
    assert error is None, error


def verify_fc2(request: Received, sts: StsKey) -> None:
    """The FC 2.0 signature, computed independently of fc2: HMAC-SHA256 over method, Content-MD5, Content-Type,
    Date, the sorted x-fc-* headers and the path."""
    h = request.headers
    fc_headers = "".join(f"{k}:{v}\n" for k, v in sorted(h.items()) if k.startswith("x-fc-"))
    to_sign = "\n".join(
        [request.method, h.get("content-md5", ""), h.get("content-type", ""), h["date"], fc_headers + request.path]
    )
    digest = hmac.new(sts.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).digest()
    assert h["authorization"] == f"FC {sts.access_key_id}:{base64.b64encode(digest).decode()}"
    assert h["x-fc-security-token"] == sts.security_token


def stripped(results):
    return [{k: v for k, v in r.items() if k not in ("final", "dead_letter", "source")} for r in results]


# -- FC 3.0 ------------------------------------------------------------------------------------------------------
def test_fc3_async_invoke_is_an_acs3_signed_post(fc_env, invoke, receiver, sts):
    fc_env.setenv("RESULT_FC_FUNCTION", "imm-outcomes")
    result = invoke.direct(TWO)
    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/2023-03-30/functions/imm-outcomes/invocations"
    assert request.headers["x-fc-invocation-type"] == "Async"
    assert request.headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={sts.access_key_id},")
    assert request.headers["x-acs-security-token"] == sts.security_token
    verify_fc3(request, sts)
    event = request.json()
    assert event["type"] == "imm_batch_updater.outcomes"
    assert stripped(event["data"]["results"]) == result["results"]
    assert request.query == ""


def test_fc3_qualifier(fc_env, invoke, receiver, sts):
    fc_env.setenv("RESULT_FC_FUNCTION", "imm-outcomes:prod")
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    [request] = receiver.requests
    assert request.path == "/2023-03-30/functions/imm-outcomes/invocations" and request.query == "qualifier=prod"
    verify_fc3(request, sts)


def test_fc3_refusal_is_reported_not_retried_and_the_outcome_logged(fc_env, invoke, receiver, capsys):
    fc_env.setenv("RESULT_FC_FUNCTION", "imm-outcomes")
    receiver.default = FC3_DENIED
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert result["results"][0]["status"] == "updated"
    assert len(receiver.requests) == 1
    records = log_records(capsys)
    assert len(messages(records, "outcome")) == 1
    assert messages(records, "sink failed")[0]["sink"] == "fc_function"
    [detail] = messages(records, "sink delivery error")
    assert detail["error_code"] == "AccessDenied" and detail["http_status"] == 403


def test_fc3_5xx_is_retried(fc_env, invoke, receiver, capsys):
    fc_env.setenv("RESULT_FC_FUNCTION", "imm-outcomes")
    receiver.reply(Reply(503, b'{"Code":"ServiceUnavailable","Message":"busy"}', {"Content-Type": "application/json"}))
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert len(receiver.requests) == 2
    assert messages(log_records(capsys), "sink failed") == []


def test_refuses_to_invoke_itself(fc_env, invoke, receiver, capsys):
    fc_env.setenv("RESULT_FC_FUNCTION", "imm-batch-updater")  # the context's function name
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert receiver.requests == []
    records = log_records(capsys)
    [refused] = messages(records, "sink refused")
    assert refused["sink"] == "fc_function" and refused["level"] == "ERROR"
    assert len(messages(records, "outcome")) == 1


def test_refuses_itself_as_an_fc2_style_name(fc_env, invoke, receiver, capsys, sts):
    from tests.conftest import fc_context

    context = fc_context(sts)
    context.function.name = "svc$imm-batch-updater"  # an FC 2.0 function as FC 3.0 names it
    fc_env.setenv("RESULT_FC_FUNCTION", "svc.prod/imm-batch-updater")
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS}, context=context)
    assert receiver.requests == [] and messages(log_records(capsys), "sink refused")


def test_default_endpoint():
    config = fc_function.Config("fn")

    def ctx(region, **env):
        return SimpleNamespace(account_id="1234567890", region=region, settings=Settings.from_env(env))

    assert fc_function.endpoint_for(config, ctx("cn-hangzhou")).url == "https://1234567890.cn-hangzhou.fc.aliyuncs.com"
    vpc = fc_function.endpoint_for(config, ctx("cn-hangzhou", IMM_NETWORK="vpc"))
    assert vpc.url == "https://1234567890.cn-hangzhou-internal.fc.aliyuncs.com"
    with pytest.raises(SinkConfigError, match="RESULT_FC_ENDPOINT"):
        fc_function.endpoint_for(config, ctx(None))


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("fn", fc_function.Target("fn")),
        ("fn:prod", fc_function.Target("fn", "prod")),
        ("svc/fn", fc_function.Target("fn", None, "svc")),
        ("svc.prod/fn", fc_function.Target("fn", "prod", "svc")),
    ],
)
def test_target_names(value, target):
    assert fc_function.Target.parse(value) == target


@pytest.mark.parametrize("value", ["/fn", "svc/", "a/b/c", ":prod"])
def test_bad_target_names(value):
    with pytest.raises(ValueError):
        fc_function.Target.parse(value)


def test_large_deliveries_are_split_below_the_async_payload_limit():
    outcomes = [Outcome(Status.UPDATED, project="p" * 100, batch_id=f"b-{i:04d}" + "x" * 100) for i in range(600)]
    payloads = fc_function.chunks(outcomes, Invocation("r", "f", "direct"), 1)
    assert len(payloads) > 1
    assert all(len(p) <= fc_function.MAX_ASYNC_PAYLOAD_BYTES for p in payloads)
    ids = [r["batch_id"] for p in payloads for r in json.loads(p)["data"]["results"]]
    assert ids == [o.batch_id for o in outcomes]


# -- FC 2.0 (fc2) ------------------------------------------------------------------------------------------------
def test_fc2_async_invoke(fc_env, invoke, receiver, sts):
    fc_env.setenv("RESULT_FC_FUNCTION", "results-svc.prod/imm-outcomes")
    result = invoke.direct(TWO)
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/2016-08-15/services/results-svc.prod/functions/imm-outcomes/invocations"
    assert request.headers["x-fc-invocation-type"] == "Async"
    verify_fc2(request, sts)
    assert stripped(request.json()["data"]["results"]) == result["results"]


def test_fc2_error_is_reported_and_its_header_logging_stays_out_of_the_logs(
    fc_env, invoke, receiver, sts, capfd, caplog
):
    caplog.set_level(logging.DEBUG)  # whatever fc2 logs, at any level, would be captured here
    fc_env.setenv("RESULT_FC_FUNCTION", "results-svc/imm-outcomes")
    receiver.default = FC2_500
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert result["results"][0]["status"] == "updated"
    assert len(receiver.requests) == 2  # fc2 does not retry POSTs; the sink tried twice
    out = capfd.readouterr()
    logged = "\n".join(_LOGGED)
    assert '"sink failed"' in out.out and '"sink":"fc_function"' in out.out
    assert "InternalServerError" in logged  # the error code is reported ...
    everything = out.out + out.err + caplog.text + logged
    for secret in (sts.security_token, sts.access_key_secret, receiver.requests[0].headers["authorization"]):
        assert secret not in everything  # ... but never the headers fc2 would have logged
    assert "x-fc-security-token" not in everything.lower()
    assert find_leaks(everything) == []
    assert not [r for r in caplog.records if r.pathname.replace("\\", "/").find("/fc2/") >= 0]


def test_fc2_unpatched_would_log_the_token(receiver, caplog, monkeypatch):
    """Control for the test above: fc2 as shipped logs the request headers, token included, on the root logger.

    Uses a token that is not registered with the leak guard, and restores fc2's own `logging` for this test only.
    """
    import fc2.client

    fc_function._fc2()  # the sink's patch is in place ...
    monkeypatch.setattr(fc2.client, "logging", logging)  # ... and undone here
    caplog.set_level(logging.DEBUG)
    receiver.default = FC2_500
    token = "control-token-not-a-secret"
    client = fc2.Client(endpoint=receiver.url, accessKeyID="ak", accessKeySecret="sk-control", securityToken=token)
    with pytest.raises(fc2.FcError):
        client.invoke_function("svc", "fn", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    assert token in caplog.text and any(r.levelno == logging.ERROR and r.name == "root" for r in caplog.records)


def test_fc2_non_json_error_is_reported(fc_env, invoke, receiver, capsys):
    fc_env.setenv("RESULT_FC_FUNCTION", "results-svc/imm-outcomes")
    receiver.default = Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    records = log_records(capsys)
    assert messages(records, "sink delivery error")[0]["error_code"] == "BadErrorResponse"
    assert len(messages(records, "outcome")) == 1


def test_fc2_does_not_retry_past_the_invocation(fc_env, invoke, capsys, sts):
    """fc2's own connection retries (5, with 1-2-4-8-16 s backoff) are off: an unreachable FC fails fast."""
    import time

    fc_env.setenv("RESULT_FC_FUNCTION", "results-svc/imm-outcomes")
    fc_env.setenv("RESULT_FC_ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert time.monotonic() - started < 3
    assert messages(log_records(capsys), "sink delivery error")[0]["error_code"] == "NetworkError"


# -- FC's async payload limit (128 KB, notes/fc-events-and-config.md "Invocation": "Async invoke ... <= 128 KB body"):
# every payload fits, however large one outcome or the whole delivery is, every outcome is sent, in order, and
# cutting a large delivery costs time linear in its size.
LIMIT = fc_function.MAX_ASYNC_PAYLOAD_BYTES
INVOCATION = Invocation("req-1", "imm-batch-updater", "direct")


def _outcome(i: int, kind: int, size: int) -> Outcome:
    if kind == 0:
        return Outcome(Status.QUEUED, project="p", batch_id=f"b-{i}", queue="work-q")
    if kind == 1:
        diff = {"Actions": {"from": [], "to": [{"Name": "doc/convert", "Parameters": ["x" * 2000] * (size // 2000)}]}}
        return Outcome(Status.UPDATED, project="p", batch_id=f"b-{i}", resumed=False, diff=diff)
    details = tuple(Detail(f"/Actions/0/Parameters/{n}", "does not match the pattern") for n in range(size // 60))
    error = ErrorInfo("InvalidDocument", "m" * min(size, 5000), details or None)
    return Outcome(Status.INVALID, project="p", batch_id=f"b-{i}", error=error)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 400_000)), min_size=1, max_size=30))
def test_every_payload_fits_and_every_outcome_is_sent_in_order(specs):
    outcomes = [_outcome(i, kind, size) for i, (kind, size) in enumerate(specs)]
    payloads = fc_function.chunks(outcomes, INVOCATION, 7)
    assert all(len(p) <= LIMIT for p in payloads)
    results = [r for p in payloads for r in json.loads(p)["data"]["results"]]
    assert [r["batch_id"] for r in results] == [o.batch_id for o in outcomes]
    for outcome, result in zip(outcomes, results, strict=True):
        whole = result_of(outcome, INVOCATION)
        if result.get("truncated"):  # only an outcome that alone would not fit loses its diff / details
            assert len(json.dumps(whole)) > LIMIT // 2
            assert result["status"] == whole["status"] and result.get("error", {}).get("code") == (
                whole.get("error") or {}
            ).get("code")
        else:
            assert result == whole


def test_cutting_a_large_delivery_encodes_each_outcome_about_once(monkeypatch):
    """A 10,000-batch fan-out is 10,000 `queued` outcomes: re-encoding the growing payload for every added outcome
    took seconds of the invocation's time (quadratic), past the deadline on a small instance."""
    encoded = 0
    real = fc_function.dumps

    def counting(value):
        nonlocal encoded
        text = real(value)
        encoded += len(text)
        return text

    monkeypatch.setattr(fc_function, "dumps", counting)
    outcomes = [_outcome(i, 0, 0) for i in range(10_000)]
    payloads = fc_function.chunks(outcomes, INVOCATION, 7)
    assert encoded <= 2 * sum(len(p) for p in payloads)


def test_an_outsized_dry_run_diff_does_not_stop_the_other_outcomes(fc_env, invoke, receiver):
    fc_env.setenv("RESULT_FC_FUNCTION", "imm-outcomes")
    actions = [{"Name": "doc/convert", "Parameters": [f"p{n}=" + "v" * 1900 for n in range(100)]}]
    documents = [
        {"ProjectName": PROJECT, "Id": READY, "DryRun": True, "Actions": actions},
        {"ProjectName": PROJECT, "Id": RUNNING, "Tags": {"owner": "media-team"}},
    ]
    result = invoke.direct(documents)
    assert [r["status"] for r in result["results"]] == ["dry_run", "conflict"]
    assert receiver.requests and all(len(r.body) <= LIMIT for r in receiver.requests)
    sent = [r for request in receiver.requests for r in request.json()["data"]["results"]]
    assert [(r["batch_id"], r["status"]) for r in sent] == [(READY, "dry_run"), (RUNNING, "conflict")]
