"""Every IMM refusal: validation, not-found, state machine, authentication; as the SDK surfaces them."""

from __future__ import annotations

import json
import time

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from imm_wire_helpers import imm_call

P = "demo-project"
ERROR_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}


def raises_client(call, *args) -> ClientException:
    with pytest.raises(ClientException) as info:
        call(*args)
    return info.value


# -- validation and not-found -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "missing"),
    [
        (m.GetBatchRequest(id="batch-demo-ready"), "ProjectName"),
        (m.GetBatchRequest(project_name=P), "Id"),
    ],
)
def test_missing_parameters(client, request_, missing):
    error = raises_client(client.get_batch, request_)
    assert (error.status_code, error.code) == (400, "InvalidArgument")
    assert f"The parameter {missing} is required but not provided." in error.message


def test_update_without_id(client):
    error = raises_client(client.update_batch, m.UpdateBatchRequest(project_name=P, tags={"a": "b"}))
    assert (error.status_code, error.code) == (400, "InvalidArgument") and "Id" in error.message


def test_create_without_input_or_actions(client):
    error = raises_client(client.create_batch, m.CreateBatchRequest(project_name=P, actions=[]))
    assert error.code == "InvalidArgument" and "Input" in error.message
    no_actions = m.CreateBatchRequest(project_name=P, input=m.Input(oss=m.InputOSS(bucket="b")))
    error = raises_client(client.create_batch, no_actions)
    assert error.code == "InvalidArgument" and "Actions" in error.message


def test_unknown_project(client):
    error = raises_client(client.get_batch, m.GetBatchRequest(project_name="nope", id="batch-demo-ready"))
    assert (error.status_code, error.code) == (404, "ResourceNotFound")
    assert "The specified resource project is not found." in error.message


@pytest.mark.parametrize("operation", ["get_batch", "update_batch", "suspend_batch", "resume_batch", "delete_batch"])
def test_unknown_batch(client, operation):
    request_class = {
        "get_batch": m.GetBatchRequest,
        "update_batch": m.UpdateBatchRequest,
        "suspend_batch": m.SuspendBatchRequest,
        "resume_batch": m.ResumeBatchRequest,
        "delete_batch": m.DeleteBatchRequest,
    }[operation]
    error = raises_client(getattr(client, operation), request_class(project_name=P, id="batch-missing"))
    assert (error.status_code, error.code) == (404, "ResourceNotFound")
    assert "The specified resource batch is not found." in error.message
    assert set(error.data) == ERROR_KEYS | {"statusCode"}
    assert error.data["HostId"] == "imm.cn-hangzhou.aliyuncs.com"


def test_error_body_is_exactly_imm_json(emu):
    response = imm_call(emu.endpoint, "GetBatch", {"ProjectName": P, "Id": "batch-x"}, in_body=False)
    assert response.status == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json
    assert set(body) == ERROR_KEYS
    assert body["RequestId"] == response.headers["x-acs-request-id"]
    assert "q=ResourceNotFound" in body["Recommend"]


@pytest.mark.parametrize("field", ["Input", "Actions", "Tags"])
def test_bad_json_names_the_parameter(emu, field):
    params = {"ProjectName": P, "Id": "batch-demo-ready", field: "{not json"}
    response = imm_call(emu.endpoint, "UpdateBatch", params)
    assert response.status == 400
    assert response.json["Code"] == "InvalidJSON" and field in response.json["Message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Input", {"OSS": {"Prefix": "x/"}}),
        ("Input", {"S3": {}}),
        ("Actions", []),
        ("Actions", [{"Parameters": ["a"]}]),
        ("Actions", [{"Name": "doc/convert", "Parameters": "pages=3"}]),
        ("Tags", ["a"]),
        ("Tags", {"a": {"nested": 1}}),
    ],
)
def test_invalid_shapes_are_invalid_argument(emu, field, value):
    params = {"ProjectName": P, "Id": "batch-demo-ready", field: json.dumps(value)}
    response = imm_call(emu.endpoint, "UpdateBatch", params)
    assert (response.status, response.json["Code"]) == (400, "InvalidArgument")
    assert field in response.json["Message"]
    assert emu.imm.get_batch(P, "batch-demo-ready")["Tags"] == {"env": "demo", "team": "media"}


def test_flattened_parameters_are_understood(emu):
    params = {
        "ProjectName": P,
        "Id": "batch-demo-ready",
        "Actions.1.Name": "doc/convert",
        "Actions.1.Parameters.1": "pages=9",
        "Input.OSS.Bucket": "flat-bucket",
        "Input.OSS.MatchExpressions.1": "*.doc",
        "Tags.team": "flat",
    }
    assert imm_call(emu.endpoint, "UpdateBatch", params).status == 200
    batch = emu.imm.get_batch(P, "batch-demo-ready")
    assert batch["Actions"] == [{"Name": "doc/convert", "Parameters": ["pages=9"]}]
    assert batch["Input"] == {"OSS": {"Bucket": "flat-bucket", "MatchExpressions": ["*.doc"]}}
    assert batch["Tags"] == {"team": "flat"}


def test_query_and_body_parameters_are_merged(emu):
    params = {"ProjectName": P, "Id": "batch-demo-ready"}
    assert imm_call(emu.endpoint, "GetBatch", params, in_body=True).json["Batch"]["Id"] == "batch-demo-ready"
    assert imm_call(emu.endpoint, "GetBatch", params, in_body=False).json["Batch"]["Id"] == "batch-demo-ready"


def test_unknown_action(emu):
    response = imm_call(emu.endpoint, "FrobnicateBatch", {"ProjectName": P})
    assert (response.status, response.json["Code"]) == (404, "InvalidAction.NotFound")


def test_wrong_api_version(emu):
    response = imm_call(emu.endpoint, "GetBatch", {"ProjectName": P, "Id": "batch-demo-ready"}, version="2017-09-06")
    assert (response.status, response.json["Code"]) == (400, "InvalidVersion")


# -- the state machine ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "state"),
    [
        ("update_batch", "Running"),
        ("update_batch", "Suspended"),
        ("update_batch", "Succeeded"),
        ("suspend_batch", "Ready"),
        ("suspend_batch", "Failed"),
        ("suspend_batch", "Suspended"),
        ("resume_batch", "Ready"),
        ("resume_batch", "Running"),
        ("resume_batch", "Succeeded"),
        ("delete_batch", "Running"),
    ],
)
def test_wrong_state_is_refused_naming_the_state(client, emu, operation, state):
    batch_id = emu.imm.create_batch(P, state=state, tags={"keep": "me"})
    request_class, action = {
        "update_batch": (m.UpdateBatchRequest, "UpdateBatch"),
        "suspend_batch": (m.SuspendBatchRequest, "SuspendBatch"),
        "resume_batch": (m.ResumeBatchRequest, "ResumeBatch"),
        "delete_batch": (m.DeleteBatchRequest, "DeleteBatch"),
    }[operation]
    request = request_class(project_name=P, id=batch_id)
    if operation == "update_batch":
        request.tags = {"changed": "yes"}
    error = raises_client(getattr(client, operation), request)
    assert (error.status_code, error.code) == (400, "InvalidArgument")
    assert f"The operation {action} is not allowed when the batch state is {state}." in error.message
    batch = emu.imm.get_batch(P, batch_id)
    assert batch["State"] == state and batch["Tags"] == {"keep": "me"}


def test_wrong_state_answer_is_configurable(client, emu):
    emu.imm.set_wrong_state_error(status=409, code="OperationNotSupported", message="The batch cannot be changed now.")
    error = raises_client(
        client.update_batch, m.UpdateBatchRequest(project_name=P, id="batch-demo-running", tags={"a": "b"})
    )
    assert (error.status_code, error.code) == (409, "OperationNotSupported")
    assert "Running" not in error.message and "cannot be changed now" in error.message


# -- authentication through the SDK and hand-built requests ---------------------------------------------------------


def get_demo(client):
    return client.get_batch(m.GetBatchRequest(project_name=P, id="batch-demo-ready"))


def test_unknown_access_key(make_client):
    error = raises_client(get_demo, make_client("LTAI-unknown", "whatever"))
    assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")


def test_wrong_secret(make_client):
    error = raises_client(get_demo, make_client("local-ak", "wrong-secret"))
    assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")


def test_sts_key_works_with_its_token(emu, make_client):
    emu.keyring.add("STS.k1", "sts-secret", "sts-token")
    assert get_demo(make_client("STS.k1", "sts-secret", "sts-token")).body.batch.state == "Ready"
    assert emu.calls(action="GetBatch")[-1].access_key_id == "STS.k1"


@pytest.mark.parametrize("token", [None, "someone-elses-token"])
def test_sts_key_without_the_right_token(emu, make_client, token):
    emu.keyring.add("STS.k1", "sts-secret", "sts-token")
    error = raises_client(get_demo, make_client("STS.k1", "sts-secret", token))
    assert (error.status_code, error.code) == (400, "InvalidSecurityToken.Malformed")


def test_expired_sts_token(emu, make_client):
    emu.keyring.add("STS.k1", "sts-secret", "sts-token")
    client = make_client("STS.k1", "sts-secret", "sts-token")
    get_demo(client)
    emu.keyring.expire("STS.k1")
    error = raises_client(get_demo, client)
    assert (error.status_code, error.code) == (400, "InvalidSecurityToken.Expired")
    emu.keyring.add("STS.k2", "new-secret", "new-token")  # rotation: fresh credentials work again
    assert get_demo(make_client("STS.k2", "new-secret", "new-token")).status_code == 200


def test_stale_date(emu):
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * 60))
    response = imm_call(emu.endpoint, "GetBatch", {"ProjectName": P, "Id": "batch-demo-ready"}, date=stale)
    assert (response.status, response.json["Code"]) == (400, "InvalidTimeStamp.Expired")
    fresh = imm_call(emu.endpoint, "GetBatch", {"ProjectName": P, "Id": "batch-demo-ready"})
    assert fresh.status == 200


def test_reused_nonce(emu):
    params = {"ProjectName": P, "Id": "batch-demo-ready"}
    assert imm_call(emu.endpoint, "GetBatch", params, nonce="f" * 32).status == 200
    replay = imm_call(emu.endpoint, "GetBatch", params, nonce="f" * 32)
    assert (replay.status, replay.json["Code"]) == (400, "SignatureNonceUsed")


def test_tampered_body_after_signing(emu):
    params = {"ProjectName": P, "Id": "batch-demo-ready", "Tags": '{"a":"b"}'}
    response = imm_call(emu.endpoint, "UpdateBatch", params, body_override=b"Id=batch-demo-ready&ProjectName=x")
    assert (response.status, response.json["Code"]) == (400, "SignatureDoesNotMatch")
    assert emu.imm.get_batch(P, "batch-demo-ready")["Tags"] == {"env": "demo", "team": "media"}


def test_unsigned_request(emu):
    response = imm_call(emu.endpoint, "GetBatch", {"ProjectName": P, "Id": "batch-demo-ready"}, sign=False)
    assert response.status == 400 and response.json["Code"] == "MissingAuthorization"


def test_authentication_comes_before_everything(emu, make_client):
    error = raises_client(get_demo, make_client("local-ak", "wrong"))
    assert error.code == "SignatureDoesNotMatch"
    response = imm_call(emu.endpoint, "NoSuchAction", {}, access_key_secret="wrong")
    assert response.json["Code"] == "SignatureDoesNotMatch"
