"""HTTP trigger through handler.handler: routing, Standard Webhooks auth, bodies, status codes."""

from __future__ import annotations

import json
import time

import pytest

import handler
from tests.conftest import PROJECT, READY, RUNNING, fc_context, http_event, new_secret, signed_headers

UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"env": "prod"}}


def test_signed_post_updates_the_batch(invoke, emu):
    status, body, headers = invoke.post(UPDATE)
    assert status == 200 and headers["Content-Type"] == "application/json"
    [result] = body["results"]
    assert result["status"] == "updated" and result["resumed"] is False
    assert result["project"] == PROJECT and result["batch_id"] == READY
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"env": "prod"}


def test_unsigned_post_is_401_and_reaches_nothing(invoke, emu):
    status, body, headers = invoke.post(UPDATE, sign=False)
    assert status == 401 and body["results"][0]["error"]["code"] == "Unauthorized"
    assert "WWW-Authenticate" in headers
    assert emu.calls(service="imm") == []


def test_wrong_secret_is_401(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    status, _, _ = invoke.post(body=raw, sign=False, headers=signed_headers(new_secret(), raw))
    assert status == 401 and emu.calls(service="imm") == []


def test_tampered_body_is_401(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw)
    status, _, _ = invoke.post(body=raw.replace(b"prod", b"dev!"), sign=False, headers=headers)
    assert status == 401 and emu.calls(service="imm") == []


def test_stale_and_future_timestamps_are_401(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    for skew in (-301, +301):
        headers = signed_headers(invoke.secret, raw, timestamp=int(time.time()) + skew)
        status, body, _ = invoke.post(body=raw, sign=False, headers=headers)
        assert status == 401 and "5 minutes" in body["results"][0]["error"]["message"]
    # Within the tolerance both ways is fine.
    for skew in (-200, +200):
        status, _, _ = invoke.post(
            body=raw, sign=False, headers=signed_headers(invoke.secret, raw, timestamp=int(time.time()) + skew)
        )
        assert status == 200


def test_rotated_secrets_both_verify(invoke, fn_env):
    old, new = invoke.secret, new_secret()
    fn_env.setenv("WEBHOOK_SECRET", f"{new} {old}")
    raw = json.dumps(UPDATE).encode()
    for secret in (old, new):
        status, _, _ = invoke.post(body=raw, sign=False, headers=signed_headers(secret, raw))
        assert status == 200
    fn_env.setenv("WEBHOOK_SECRET", new)  # rotation finished: the old secret no longer works
    assert invoke.post(body=raw, sign=False, headers=signed_headers(old, raw))[0] == 401


def test_header_names_in_any_case(invoke):
    raw = json.dumps(UPDATE).encode()
    headers = {k.title(): v for k, v in signed_headers(invoke.secret, raw).items()}
    assert invoke.post(body=raw, sign=False, headers=headers)[0] == 200


def test_no_secret_fails_closed_and_logs_the_misconfiguration(invoke, fn_env, emu, capsys):
    fn_env.delenv("WEBHOOK_SECRET")
    status, _, _ = invoke.post(UPDATE)
    assert status == 401 and emu.calls(service="imm") == []
    assert "misconfiguration" in capsys.readouterr().out
    # Also when the body cannot even be decoded (it is refused before verification).
    event = json.loads(http_event("POST", "/", b"", {}))
    event["body"], event["isBase64Encoded"] = "%%%", True
    response = handler.handler(json.dumps(event).encode(), fc_context(invoke.sts))
    assert response["statusCode"] == 401 and "misconfiguration" in capsys.readouterr().out


@pytest.mark.parametrize("secret", ["", "whsec_dGVzdA==", "not-a-secret", "whsec_%%%"])
def test_a_secret_the_function_cannot_use_is_named_for_what_it_is(invoke, fn_env, emu, capsys, secret):
    """Empty, short or malformed: the 401 and the log say which rule the secret breaks, never the secret."""
    fn_env.setenv("WEBHOOK_SECRET", secret)
    status, body, _ = invoke.post(UPDATE)
    assert status == 401 and emu.calls(service="imm") == []
    message = body["results"][0]["error"]["message"]
    assert "no usable secret" in message and "24 bytes" in message
    out = capsys.readouterr().out
    assert "no usable secret" in out
    if secret:
        assert secret not in message and secret not in out


def test_http_auth_none_accepts_unsigned(invoke, fn_env):
    fn_env.setenv("HTTP_AUTH", "none")
    fn_env.delenv("WEBHOOK_SECRET")
    assert invoke.post(UPDATE, sign=False)[0] == 200


def test_unknown_http_auth_mode_fails_closed(invoke, fn_env):
    fn_env.setenv("HTTP_AUTH", "nonee")
    assert invoke.post(UPDATE, sign=False)[0] == 401


def test_replayed_webhook_id_is_not_applied_twice(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw, msg_id="msg_replay")
    first = invoke.post(body=raw, sign=False, headers=headers)
    updates = len(emu.calls(action="UpdateBatch"))
    second = invoke.post(body=raw, sign=False, headers=headers)
    assert first[:2] == second[:2] and first[0] == 200
    assert len(emu.calls(action="UpdateBatch")) == updates


def test_get_schema_and_healthz_need_no_signature(invoke):
    status, body, headers = invoke.post(method="GET", path="/schema", body=b"", sign=False)
    assert status == 200 and body["title"] == "IMM batch update request"
    assert invoke.post(method="GET", path="/healthz", body=b"", sign=False)[:2] == (200, {"status": "ok"})


@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("GET", "/schema"), ("GET", "/"), ("PUT", "/")])
@pytest.mark.parametrize(
    ("key", "poison"),
    [("headers", '{"x-a":"1","x-a":"2"}'), ("queryParameters", '{"q":"\\ud800"}'), ("queryParameters", '{"n":1e400}')],
)
def test_every_route_answers_400_for_an_event_that_is_not_strict_json(invoke, method, path, key, poison):
    """Strict input on every route: a GET route or a method that is not allowed answers such an event 400 (not
    200 or 405); a POST is authenticated first (401, see test_webhook_hardening)."""
    clean = http_event(method, path, b"").decode()
    assert handler.handler(clean.encode(), fc_context(invoke.sts))["statusCode"] == (
        200 if method == "GET" and path != "/" else 405
    )
    event = clean.replace(f'"{key}": {{}}', f'"{key}": {poison}', 1)
    assert event != clean
    response = handler.handler(event.encode(), fc_context(invoke.sts))
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["results"][0]["status"] == "invalid"


def test_other_methods_are_405(invoke):
    for method, path in (("GET", "/"), ("PUT", "/"), ("DELETE", "/"), ("POST", "/schema"), ("PATCH", "/healthz")):
        status, body, headers = invoke.post(method=method, path=path, body=b"", sign=False)
        assert status == 405 and "Allow" in headers and body["results"][0]["error"]["code"] == "MethodNotAllowed"


def test_base64_body(invoke):
    status, body, _ = invoke.post(UPDATE, base64_body=True)
    assert status == 200 and body["results"][0]["status"] == "updated"


def test_bad_base64_body_is_401_when_signed_else_400(invoke, fn_env):
    status, body, _ = invoke.post(body=b"%%%not base64%%%", base64_body=False, sign=False, headers={}, path="/")
    assert status == 401  # unsigned first
    event = json.loads(http_event("POST", "/", b"", {}))
    event["body"], event["isBase64Encoded"] = "%%%", True
    raw_headers = signed_headers(invoke.secret, b"")
    event["headers"] = raw_headers
    response = handler.handler(json.dumps(event).encode(), fc_context(invoke.sts))
    # The signed bytes cannot be known, so it cannot be authenticated: 401, as the contract pins for those.
    assert response["statusCode"] == 401
    fn_env.setenv("HTTP_AUTH", "none")
    response = handler.handler(json.dumps(event).encode(), fc_context(invoke.sts))
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["results"][0]["error"]["code"] == "InvalidBody"


def test_oversized_body_is_invalid_400(invoke, fn_env):
    fn_env.setenv("MAX_BODY_BYTES", "2048")
    doc = dict(UPDATE, Tags={f"k{i}": "v" * 200 for i in range(20)})
    status, body, _ = invoke.post(doc)
    [result] = body["results"]
    assert status == 400 and result["status"] == "invalid" and result["error"]["code"] == "TooLarge"
    assert result["error"]["details"][0]["path"] == ""


def test_not_json_is_400_with_details(invoke):
    status, body, _ = invoke.post(body=b"{oops")
    [result] = body["results"]
    assert status == 400 and result["status"] == "invalid" and result["error"]["details"][0]["path"] == ""
    assert result["project"] is None and result["batch_id"] is None


def test_schema_violation_is_400_naming_the_path(invoke, emu):
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": READY, "Actions": [{"Nme": "doc/convert"}]})
    details = body["results"][0]["error"]["details"]
    assert status == 400 and {"path": "/Actions/0/Nme", "message": "unknown field (not allowed here)"} in details
    assert emu.calls(action="UpdateBatch") == []


def test_status_codes_per_outcome(invoke):
    assert invoke.post({**UPDATE, "Id": "batch-nope"})[0] == 404
    assert invoke.post({**UPDATE, "Id": RUNNING})[0] == 409
    assert invoke.post({**UPDATE, "DryRun": True})[0] == 200


def test_bulk_all_ok_is_200_mixed_is_207_same_failure_is_common_status(invoke):
    ok = [UPDATE, {**UPDATE, "Id": "batch-demo-failed"}]
    status, body, _ = invoke.post(ok)
    assert status == 200 and [r["status"] for r in body["results"]] == ["updated", "updated"]
    status, body, _ = invoke.post([UPDATE, {**UPDATE, "Id": RUNNING}])
    assert status == 207 and [r["status"] for r in body["results"]] == ["updated", "conflict"]
    status, body, _ = invoke.post([{**UPDATE, "Id": "batch-x"}, {**UPDATE, "Id": "batch-y"}])
    assert status == 404 and [r["index"] for r in body["results"]] == [0, 1]
    assert invoke.post([])[0] == 400


def test_client_errors_never_raise(invoke):
    # Every response above is a struct; here: a body that is JSON but not an object, and a null body.
    assert invoke.post(body=b"42")[0] == 400
    assert invoke.post(body=b"null")[0] == 400


# ---- hardening (issue #10) -----------------------------------------------------------------------------------------
def test_a_webhook_header_given_twice_with_different_values_is_401(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw)
    # The replay check must see the id that was signed: a second webhook-id in another case is refused.
    twice = {**headers, "Webhook-Id": "msg_other"}
    status, body, _ = invoke.post(body=raw, sign=False, headers=twice)
    assert status == 401 and "twice" in body["results"][0]["error"]["message"]
    assert emu.calls(service="imm") == []
    same = {**headers, "WEBHOOK-ID": headers["webhook-id"]}  # the same value twice is the same header
    assert invoke.post(body=raw, sign=False, headers=same)[0] == 200


def test_a_webhook_header_as_a_list_of_different_values_is_401(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw)
    headers_list = {**headers, "webhook-id": [headers["webhook-id"], "msg_other"]}
    status, _, _ = invoke.post(body=raw, sign=False, headers=headers_list)
    assert status == 401 and emu.calls(service="imm") == []


def test_a_duplicate_header_key_in_the_event_itself_is_401(invoke, emu):
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw)
    event = http_event("POST", "/", raw, headers).replace(
        b'"webhook-id": ', b'"webhook-id": "msg_forged", "webhook-id": ', 1
    )
    response = handler.handler(event, fc_context(invoke.sts))
    assert response["statusCode"] == 401 and emu.calls(service="imm") == []


def test_only_json_true_means_base64(invoke, emu, fn_env):
    import base64

    fn_env.setenv("HTTP_AUTH", "none")
    encoded = base64.b64encode(json.dumps(UPDATE).encode())
    event = json.loads(http_event("POST", "/", encoded, {}))
    for marker in ("true", 1, "yes"):
        event["isBase64Encoded"] = marker
        response = handler.handler(json.dumps(event).encode(), fc_context(invoke.sts))
        assert response["statusCode"] == 400, marker  # the body is taken as text: not JSON
    event["isBase64Encoded"] = True
    assert handler.handler(json.dumps(event).encode(), fc_context(invoke.sts))["statusCode"] == 200


def test_an_unknown_method_is_not_echoed(invoke):
    method = "X" * 5000 + "<script>"
    status, body, headers = invoke.post(UPDATE, method=method, sign=False)
    message = body["results"][0]["error"]["message"]
    assert status == 405 and "X" * 20 not in message and "<script>" not in message and len(message) < 100
    status, body, _ = invoke.post(UPDATE, method="PATCH", sign=False)
    assert status == 405 and "PATCH" in body["results"][0]["error"]["message"]


def test_the_replay_memory_is_bounded_in_bytes():
    import os

    from imm_batch_updater.webhooks import ReplayGuard

    guard = ReplayGuard(max_bytes=200_000, max_answer_bytes=50_000)
    for i in range(200):
        body = os.urandom(20_000).hex()  # incompressible: 40 kB each
        assert guard.remember(f"msg_{i}", {"statusCode": 200, "body": body})
        assert guard.bytes <= 200_000
    assert guard.recall("msg_0") is None and guard.recall("msg_199")["statusCode"] == 200
    assert len(guard) < 10
    assert not guard.remember("msg_huge", {"statusCode": 200, "body": os.urandom(60_000).hex()})
    assert guard.recall("msg_huge") is None
