"""The ACS3 / V2 verifier against fixed ACS3 signature vectors and against live SDK requests."""

from __future__ import annotations

import hashlib

import pytest
from alibabacloud_imm20200930 import models as imm_models
from imm_wire_helpers import sdk_sign

from emulator.server import Keyring, Request
from emulator.signature import (
    NonceCache,
    canonical_query,
    parse_timestamp,
    sign_acs3,
    sign_rpc,
    verify_acs3,
    verify_request,
    verify_rpc,
)

VECTOR_NOW = parse_timestamp("2026-01-01T00:00:00Z")
BASE_HEADERS = {
    "host": "imm.cn-hangzhou.aliyuncs.com",
    "x-acs-version": "2020-09-30",
    "user-agent": "test-agent",
    "x-acs-date": "2026-01-01T00:00:00Z",
    "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
    "accept": "application/json",
}
UPDATE_BODY = (
    b"Actions=%5B%7B%22Name%22%3A%22doc%2Fconvert%22%2C%22Parameters%22%3A%5B%22pages%3D3%22%5D%7D%5D"
    b"&Id=batch-1&ProjectName=test-project"
)
UPDATE_AUTH = (
    "ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;"
    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=fc767457ad4a0b510211882657ab2ddeab60cbe1be5fcb7b2a53df9326b6af47"
)
GET_QUERY = "Id=batch-1&ProjectName=test-project"
GET_AUTH = (
    "ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;"
    "x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=fefb5e3029d748a997c8262798f7e44da442e26d7ef175e70adee36e1cbd69ae"
)


def update_vector() -> Request:
    headers = dict(
        BASE_HEADERS,
        **{
            "x-acs-action": "UpdateBatch",
            "content-type": "application/x-www-form-urlencoded",
            "x-acs-content-sha256": "bb52d37c68c0ac3966b87c98d51d0d6ef961b74082bd1ceb829d5cf9b71c68f5",
            "authorization": UPDATE_AUTH,
        },
    )
    return Request("POST", "/", "", headers, UPDATE_BODY)


def get_vector() -> Request:
    headers = dict(
        BASE_HEADERS,
        **{
            "x-acs-action": "GetBatch",
            "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
            "authorization": GET_AUTH,
        },
    )
    return Request("POST", "/", GET_QUERY, headers, b"")


@pytest.fixture
def keyring() -> Keyring:
    ring = Keyring()
    ring.add("testAK", "testSecret")
    return ring


def resign(request: Request, secret: str = "testSecret", ak: str = "testAK") -> Request:
    """Re-sign a request after editing it, with the SDK's signer."""
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    headers["x-acs-content-sha256"] = hashlib.sha256(request.body).hexdigest()
    query = dict(p.split("=", 1) for p in request.query.split("&")) if request.query else {}
    headers["authorization"] = sdk_sign(request.method, query, headers, request.body, ak, secret)
    return Request(request.method, request.path, request.query, headers, request.body)


# -- fixed vectors -------------------------------------------------------------------------------------------------


def test_update_vector_body_hash_matches_the_notes():
    assert hashlib.sha256(UPDATE_BODY).hexdigest() == update_vector().headers["x-acs-content-sha256"]


@pytest.mark.parametrize("vector", [update_vector, get_vector])
def test_fixed_vectors_verify(keyring, vector):
    assert verify_acs3(vector(), keyring, now=VECTOR_NOW, nonces=NonceCache()) is None


@pytest.mark.parametrize(("vector", "expected"), [(update_vector, UPDATE_AUTH), (get_vector, GET_AUTH)])
def test_sign_acs3_reproduces_both_authorization_values(vector, expected):
    request = vector()
    headers = {k: v for k, v in request.headers.items() if k not in ("authorization", "x-acs-content-sha256")}
    assert sign_acs3("POST", "/", request.query, headers, request.body, "testAK", "testSecret") == expected


@pytest.mark.parametrize(("vector", "expected"), [(update_vector, UPDATE_AUTH), (get_vector, GET_AUTH)])
def test_sdk_signer_agrees_with_the_vectors(vector, expected):
    request = vector()
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    query = dict(p.split("=", 1) for p in request.query.split("&")) if request.query else {}
    assert sdk_sign("POST", query, headers, request.body, "testAK", "testSecret") == expected


# -- every refusal -------------------------------------------------------------------------------------------------


def test_tampered_body_is_refused(keyring):
    request = update_vector()
    request.body = request.body.replace(b"batch-1", b"batch-2")
    error = verify_acs3(request, keyring, now=VECTOR_NOW)
    assert error is not None and (error.status, error.code) == (400, "SignatureDoesNotMatch")


def test_tampered_signed_header_is_refused_with_the_server_string_to_sign(keyring):
    request = update_vector()
    request.headers["x-acs-action"] = "DeleteBatch"
    error = verify_acs3(request, keyring, now=VECTOR_NOW)
    assert error is not None and error.code == "SignatureDoesNotMatch"
    assert "ACS3-HMAC-SHA256\n" in error.message


def test_wrong_secret_is_refused(keyring):
    error = verify_acs3(resign(update_vector(), secret="not-the-secret"), keyring, now=VECTOR_NOW)
    assert error is not None and (error.status, error.code) == (400, "SignatureDoesNotMatch")


def test_unknown_key_is_404(keyring):
    error = verify_acs3(resign(update_vector(), ak="nobody"), keyring, now=VECTOR_NOW)
    assert error is not None and (error.status, error.code) == (404, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize(("offset", "ok"), [(14 * 60, True), (-14 * 60, True), (16 * 60, False), (-16 * 60, False)])
def test_timestamp_window_is_fifteen_minutes(keyring, offset, ok):
    error = verify_acs3(update_vector(), keyring, now=VECTOR_NOW + offset)
    if ok:
        assert error is None
    else:
        assert error is not None and (error.status, error.code) == (400, "InvalidTimeStamp.Expired")


def test_reused_nonce_is_refused_but_a_rejected_request_does_not_burn_it(keyring):
    nonces = NonceCache()
    bad = resign(update_vector(), secret="wrong")
    assert verify_acs3(bad, keyring, now=VECTOR_NOW, nonces=nonces).code == "SignatureDoesNotMatch"
    assert verify_acs3(update_vector(), keyring, now=VECTOR_NOW, nonces=nonces) is None
    error = verify_acs3(update_vector(), keyring, now=VECTOR_NOW, nonces=nonces)
    assert error is not None and (error.status, error.code) == (400, "SignatureNonceUsed")


def test_unsigned_acs_header_is_refused(keyring):
    request = update_vector()
    request.headers["x-acs-extra"] = "sneaked in"
    error = verify_acs3(request, keyring, now=VECTOR_NOW)
    assert error is not None and error.code == "IncompleteSignature" and "x-acs-extra" in error.message


def test_payload_hash_header_must_match_the_body(keyring):
    request = update_vector()
    request.headers["x-acs-content-sha256"] = hashlib.sha256(b"other").hexdigest()
    error = verify_acs3(request, keyring, now=VECTOR_NOW)
    assert error is not None and error.code == "SignatureDoesNotMatch" and "sha256" in error.message


@pytest.mark.parametrize("authorization", ["", "Bearer x", "ACS3-HMAC-SHA256 Credential=testAK"])
def test_malformed_authorization_is_refused(keyring, authorization):
    request = update_vector()
    request.headers["authorization"] = authorization
    error = verify_request(request, keyring, now=VECTOR_NOW)
    assert error is not None and error.status == 400 and error.code in ("IncompleteSignature", "MissingAuthorization")


def sts_request(token: str | None) -> Request:
    request = update_vector()
    if token is not None:
        request.headers["x-acs-accesskey-id"] = "STS.testAK"
        request.headers["x-acs-security-token"] = token
    return resign(request, ak="STS.testAK", secret="stsSecret")


def test_sts_key_with_its_token_passes(keyring):
    keyring.add("STS.testAK", "stsSecret", "the-token")
    assert verify_acs3(sts_request("the-token"), keyring, now=VECTOR_NOW) is None


@pytest.mark.parametrize("token", [None, "another-token"])
def test_sts_key_without_its_token_is_malformed(keyring, token):
    keyring.add("STS.testAK", "stsSecret", "the-token")
    error = verify_acs3(sts_request(token), keyring, now=VECTOR_NOW)
    assert error is not None and (error.status, error.code) == (400, "InvalidSecurityToken.Malformed")


def test_expired_sts_token(keyring):
    keyring.add("STS.testAK", "stsSecret", "the-token")
    keyring.expire("STS.testAK")
    error = verify_acs3(sts_request("the-token"), keyring, now=VECTOR_NOW)
    assert error is not None and (error.status, error.code) == (400, "InvalidSecurityToken.Expired")


def test_sts_deadline(keyring):
    keyring.add("STS.testAK", "stsSecret", "the-token", expires_at=1000.0)
    assert not keyring.is_expired("STS.testAK", now=999.0)
    assert keyring.is_expired("STS.testAK", now=1000.0)


def test_token_sent_with_a_permanent_key_is_a_mismatch(keyring):
    keyring.add("STS.testAK", "stsSecret")  # no token: a permanent key
    error = verify_acs3(sts_request("some-token"), keyring, now=VECTOR_NOW)
    assert error is not None and error.code == "InvalidSecurityToken.MismatchWithAccessKey"


# -- helpers -------------------------------------------------------------------------------------------------------


def test_canonical_query_matches_the_captured_special_characters():
    assert canonical_query("TagSelector=k%3Dv+w%2A~%E4%B8%AD") == "TagSelector=k%3Dv%20w%2A~%E4%B8%AD"
    assert canonical_query("b=2&a=1") == "a=1&b=2"


def test_nonce_cache_expires_and_stays_bounded():
    cache = NonceCache(ttl=10, max_entries=3)
    assert cache.check_and_add("n1", now=0)
    assert not cache.check_and_add("n1", now=5)
    assert cache.check_and_add("n1", now=11)  # the first sighting expired
    for i in range(10):
        cache.check_and_add(f"x{i}", now=12)
    assert len(cache) <= 3


def test_v2_rpc_signature_round_trip(keyring):
    params = {
        "Action": "GetBatch",
        "Version": "2020-09-30",
        "Format": "json",
        "AccessKeyId": "testAK",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": "n-1",
        "Timestamp": "2026-01-01T00:00:00Z",
        "ProjectName": "test project",
    }
    from urllib.parse import urlencode

    params["Signature"] = sign_rpc("POST", params, "testSecret")
    request = Request("POST", "/", urlencode(params), {}, b"")
    assert verify_rpc(request, keyring, now=VECTOR_NOW) is None
    params["ProjectName"] = "other"
    error = verify_rpc(Request("POST", "/", urlencode(params), {}, b""), keyring, now=VECTOR_NOW)
    assert error is not None and error.code == "SignatureDoesNotMatch"


# -- live requests from the real SDK -------------------------------------------------------------------------------


def capture(emu):
    """Record the raw requests the IMM service receives."""
    seen: list[Request] = []
    original = emu.imm.handle

    def recording(request: Request):
        seen.append(request)
        return original(request)

    emu.imm.handle = recording
    return seen


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_live_sdk_requests_verify_independently(emu, make_client, algorithm):
    seen = capture(emu)
    client = make_client(signature_algorithm=algorithm) if algorithm else make_client()
    client.update_batch(
        imm_models.UpdateBatchRequest(project_name="demo-project", id="batch-demo-ready", tags={"k": "v w*~中"})
    )
    client.get_batch(imm_models.GetBatchRequest(project_name="demo-project", id="batch-demo-ready"))
    assert len(seen) == 2
    for request in seen:
        assert ("authorization" in request.headers) == (algorithm is None)
        # A fresh nonce cache: the emulator already consumed these nonces.
        assert verify_request(request, emu.keyring, nonces=NonceCache()) is None
        request.body += b"&x=1"
        assert verify_request(request, emu.keyring).code == "SignatureDoesNotMatch"


def test_live_sts_request_signs_the_token_headers(emu, make_client):
    emu.keyring.add("STS.live", "live-secret", "live-token")
    seen = capture(emu)
    make_client("STS.live", "live-secret", "live-token").get_batch(
        imm_models.GetBatchRequest(project_name="demo-project", id="batch-demo-ready")
    )
    (request,) = seen
    signed = request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"x-acs-security-token", "x-acs-accesskey-id", "host"} <= set(signed)
    assert verify_acs3(request, emu.keyring, nonces=NonceCache()) is None
