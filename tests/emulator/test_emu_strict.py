"""IMM refuses what it cannot store (issue #10, bullet 8), and every 2xx it gives carries RequestId.

JSON parameters with NaN/Infinity, overflowing numbers, duplicate keys or lone surrogates; names with control
characters; form values that are not UTF-8. Each is a 400 naming the parameter, and nothing is stored.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from imm_wire_helpers import imm_call

P = "demo-project"
READY = "batch-demo-ready"
DEMO_TAGS = {"env": "demo", "team": "media"}

# (JSON text of a field, the code IMM answers). NaN and Infinity are not JSON at all (RFC 8259 §6): InvalidJSON,
# IMM's code for a JSON parameter it cannot parse. The rest parses but cannot be stored: InvalidArgument.
POISON = {
    "nan": ('{"n":NaN}', "InvalidJSON"),
    "infinity": ('{"n":Infinity}', "InvalidJSON"),
    "minus-infinity": ('{"n":-Infinity}', "InvalidJSON"),
    "overflow": ('{"n":1e400}', "InvalidArgument"),
    "negative-overflow": ('{"n":-1e999}', "InvalidArgument"),
    "huge-integer": ('{"n":' + "9" * 400 + "}", "InvalidArgument"),
    "duplicate-key": ('{"n":"a","n":"b"}', "InvalidArgument"),
    "nested-duplicate-key": ('{"o":{"k":1,"k":1}}', "InvalidArgument"),
    "lone-high-surrogate": ('{"n":"\\ud800"}', "InvalidArgument"),
    "lone-low-surrogate": ('{"n":"x\\udfff"}', "InvalidArgument"),
    "surrogate-in-key": ('{"\\ud800":"v"}', "InvalidArgument"),
}


def as_field(field: str, inner: str) -> str:
    """Put the poisoned JSON object where `field` holds a free-form object or string."""
    if field == "Tags":
        return inner
    if field == "Input":
        return '{"OSS":{"Bucket":"demo-bucket","Prefix":"p/","Extra":' + inner + "}}"
    if field == "Actions":
        return '[{"Name":"doc/convert","Parameters":["a=1"],"Extra":' + inner + "}]"
    return '{"MNS":{"TopicName":"t","Extra":' + inner + "}}"  # Notification


def expect_refusal(response, code: str, field: str) -> None:
    assert response.status == 400, response.raw
    body = response.json
    assert body["Code"] == code and f"parameter {field}" in body["Message"]
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert "ud800" not in body["Message"] and "NaN" not in body["Message"]  # the value is never echoed


@pytest.mark.parametrize("kind", sorted(POISON))
@pytest.mark.parametrize("field", ["Input", "Actions", "Tags"])
def test_update_batch_refuses_unstorable_json(emu, field, kind):
    text, code = POISON[kind]
    before = emu.imm.get_batch(P, READY)
    response = imm_call(emu.endpoint, "UpdateBatch", {"ProjectName": P, "Id": READY, field: as_field(field, text)})
    expect_refusal(response, code, field)
    assert emu.imm.get_batch(P, READY) == before


@pytest.mark.parametrize("kind", sorted(POISON))
@pytest.mark.parametrize("field", ["Input", "Actions", "Tags", "Notification"])
def test_create_batch_refuses_unstorable_json(emu, field, kind):
    text, code = POISON[kind]
    params = {
        "ProjectName": P,
        "Input": '{"OSS":{"Bucket":"demo-bucket"}}',
        "Actions": '[{"Name":"doc/convert"}]',
        field: as_field(field, text),
    }
    count = len(emu.imm.list_batches(P))
    expect_refusal(imm_call(emu.endpoint, "CreateBatch", params), code, field)
    assert len(emu.imm.list_batches(P)) == count


def test_what_is_storable_is_still_stored(emu):
    tags = '{"big":1.7976931348623157e308,"zero":-0.0,"int":' + "9" * 300 + ',"pair":"\\ud83d\\ude00","t":"中文"}'
    response = imm_call(emu.endpoint, "UpdateBatch", {"ProjectName": P, "Id": READY, "Tags": tags})
    assert response.status == 200, response.raw
    stored = emu.imm.get_batch(P, READY)["Tags"]
    assert stored["pair"] == "\U0001f600" and stored["t"] == "中文" and stored["int"] == int("9" * 300)


def test_sdk_sends_infinity_and_nan_and_both_are_refused(client, emu):
    """The SDK's json.dumps writes Infinity/NaN for non-finite floats: the emulator must not store them."""
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ClientException) as info:
            client.update_batch(m.UpdateBatchRequest(project_name=P, id=READY, tags={"n": value}))
        assert (info.value.status_code, info.value.code) == (400, "InvalidJSON") and "Tags" in info.value.message
    assert emu.imm.get_batch(P, READY)["Tags"] == DEMO_TAGS


def test_surrogate_written_as_utf8_bytes_is_refused(emu):
    """A raw surrogate code point after percent-decoding (%ED%A0%80 is U+D800 in UTF-8 form) is not UTF-8."""
    tags = quote('{"n":"', safe="") + "%ED%A0%80" + quote('"}', safe="")
    raw = f"Id={READY}&ProjectName={P}&Tags={tags}".encode()
    expect_refusal(imm_call(emu.endpoint, "UpdateBatch", raw_body=raw), "InvalidArgument", "Tags")
    assert emu.imm.get_batch(P, READY)["Tags"] == DEMO_TAGS


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (f"Id={READY}&ProjectName={P}&Tags=%7B%22n%22%3A%22%FF%22%7D".encode(), "Tags"),
        (f"Id={READY}%C3&ProjectName={P}&Tags=%7B%7D".encode(), "Id"),
        (f"Id={READY}&ProjectName={P}\xff&Tags=%7B%7D".encode("latin-1"), "ProjectName"),  # an unencoded byte
    ],
)
def test_form_values_that_are_not_utf8_are_refused(emu, raw, field):
    expect_refusal(imm_call(emu.endpoint, "UpdateBatch", raw_body=raw), "InvalidArgument", field)
    assert emu.imm.get_batch(P, READY)["Tags"] == DEMO_TAGS


def test_a_parameter_given_twice_is_refused(emu):
    raw = f"Id={READY}&Id=batch-demo-failed&ProjectName={P}&Tags=%7B%22a%22%3A%22b%22%7D".encode()
    response = imm_call(emu.endpoint, "UpdateBatch", raw_body=raw)
    assert (response.status, response.json["Code"]) == (400, "InvalidArgument")
    assert "Id" in response.json["Message"] and "more than once" in response.json["Message"]
    assert emu.imm.get_batch(P, READY)["Tags"] == DEMO_TAGS


CONTROLS = ["\x00", "\x07", "\t", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]


@pytest.mark.parametrize("char", CONTROLS + ["\n"])
@pytest.mark.parametrize("where", ["prefix", "middle", "suffix"])
def test_ids_with_control_characters_are_refused(client, emu, char, where):
    batch_id = {"prefix": char + READY, "middle": READY[:5] + char + READY[5:], "suffix": READY + char}[where]
    with pytest.raises(ClientException) as info:
        client.update_batch(m.UpdateBatchRequest(project_name=P, id=batch_id, tags={"a": "b"}))
    assert (info.value.status_code, info.value.code) == (400, "InvalidArgument")
    assert "parameter Id contains a control character" in info.value.message
    with pytest.raises(ClientException) as info:
        client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id))  # the query string, same rule
    assert info.value.code == "InvalidArgument"


@pytest.mark.parametrize("char", ["\n", "\x00", "\x9f"])
def test_project_name_and_service_role_with_control_characters(client, emu, char):
    with pytest.raises(ClientException) as info:
        client.get_batch(m.GetBatchRequest(project_name=P + char, id=READY))
    assert info.value.code == "InvalidArgument" and "ProjectName" in info.value.message
    request = m.CreateBatchRequest(
        project_name=P,
        input=m.Input(oss=m.InputOSS(bucket="demo-bucket")),
        actions=[m.CreateBatchRequestActions(name="doc/convert")],
        service_role="AliyunIMMBatchTriggerRole" + char,
    )
    with pytest.raises(ClientException) as info:
        client.create_batch(request)
    assert info.value.code == "InvalidArgument" and "ServiceRole" in info.value.message


@pytest.mark.parametrize("char", ["\n", "\x00", "\x7f", "\x85"])
def test_bucket_and_action_names_with_control_characters(client, emu, char):
    bad_bucket = m.UpdateBatchRequest(
        project_name=P, id=READY, input=m.Input(oss=m.InputOSS(bucket="demo-bucket" + char))
    )
    with pytest.raises(ClientException) as info:
        client.update_batch(bad_bucket)
    assert info.value.code == "InvalidArgument" and "Input.OSS.Bucket" in info.value.message
    bad_action = m.UpdateBatchRequest(
        project_name=P, id=READY, actions=[m.UpdateBatchRequestActions(name="doc/convert" + char)]
    )
    with pytest.raises(ClientException) as info:
        client.update_batch(bad_action)
    assert info.value.code == "InvalidArgument" and "Actions[0].Name" in info.value.message
    assert emu.imm.get_batch(P, READY)["Input"]["OSS"]["Bucket"] == "demo-bucket"


def test_letters_beyond_ascii_are_not_control_characters(client):
    """é, 中 and U+00A0 are printable: the answer is the ordinary not-found, not a control-character refusal."""
    for batch_id in ("batch-é", "batch-中", "batch-\u00a0x"):
        with pytest.raises(ClientException) as info:
            client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id))
        assert (info.value.status_code, info.value.code) == (404, "ResourceNotFound")


# -- every 2xx carries RequestId -------------------------------------------------------------------------------


def test_every_successful_action_answers_a_json_object_with_request_id(client, emu):
    created = client.create_batch(
        m.CreateBatchRequest(
            project_name=P,
            input=m.Input(oss=m.InputOSS(bucket="demo-bucket")),
            actions=[m.CreateBatchRequestActions(name="doc/convert")],
        )
    )
    batch_id = created.body.id
    answers = {
        "CreateBatch": created,
        "GetBatch": client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id)),
        "ListBatches": client.list_batches(m.ListBatchesRequest(project_name=P)),
        "UpdateBatch": client.update_batch(m.UpdateBatchRequest(project_name=P, id=batch_id, tags={"a": "b"})),
    }
    emu.imm.set_state(P, batch_id, "Running")
    answers["SuspendBatch"] = client.suspend_batch(m.SuspendBatchRequest(project_name=P, id=batch_id))
    answers["ResumeBatch"] = client.resume_batch(m.ResumeBatchRequest(project_name=P, id=batch_id))
    emu.imm.set_state(P, batch_id, "Succeeded")
    answers["DeleteBatch"] = client.delete_batch(m.DeleteBatchRequest(project_name=P, id=batch_id))
    for action, response in answers.items():
        assert response.status_code == 200, action
        assert response.body.request_id, action
        assert response.body.request_id == response.headers["x-acs-request-id"], action
    ids = [r.body.request_id for r in answers.values()]
    assert len(set(ids)) == len(ids)  # one per request


@pytest.mark.parametrize(
    ("action", "params", "in_body"),
    [
        ("GetBatch", {"ProjectName": P, "Id": READY}, False),
        ("ListBatches", {"ProjectName": P}, False),
        ("UpdateBatch", {"ProjectName": P, "Id": READY, "Tags": "{}"}, True),
        ("ResumeBatch", {"ProjectName": P, "Id": "batch-demo-failed"}, True),
        ("SuspendBatch", {"ProjectName": P, "Id": "batch-demo-running"}, True),
    ],
)
def test_raw_2xx_bodies_are_json_objects_with_request_id(emu, action, params, in_body):
    response = imm_call(emu.endpoint, action, params, in_body=in_body)
    assert response.status == 200
    body = json.loads(response.raw)
    assert isinstance(body, dict) and isinstance(body.get("RequestId"), str) and body["RequestId"]
    assert response.headers["content-type"].startswith("application/json")
