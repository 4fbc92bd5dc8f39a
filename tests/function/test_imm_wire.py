"""The function's IMM calls are byte-for-byte the calls the IMM product SDK would make.

imm.py sends GetBatch, UpdateBatch and ResumeBatch through the SDK core's generic `call_api` instead of the IMM
SDK's generated `*_with_options` methods (those rebuild request models for every call). Here both paths send the
same documents to the emulator, which records each request body as received; the bodies must be equal, and the
function's requests must be ACS3-signed like the SDK's.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from alibabacloud_imm20200930 import models
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi.models import Config
from darabonba.runtime import RuntimeOptions

from tests.conftest import FAILED, PROJECT, READY

DOCUMENTS = [
    {"Tags": {"owner": "media-team"}},
    # Non-ASCII, characters the form encoding escapes, numbers, and the Tags order the caller chose (not sorted).
    {"Tags": {"z-last": "été 中文", "a+b": "x=y&z", "n": 1}},
    {
        "Input": {"OSS": {"Prefix": "in/", "Bucket": "demo-bucket", "MatchExpressions": ["*.mp4", "*.mov"]}},
        "Actions": [{"Parameters": ["target=mp4", "q=中"], "Name": "video/convert"}, {"Name": "doc/convert"}],
        "Tags": {"b": "2", "a": "1"},
    },
    {"Actions": [{"Name": "video/convert", "Parameters": []}]},
    {"Input": {"OSS": {"Bucket": "demo-bucket"}}},
]


def sdk_client(emu, sts) -> Client:
    return Client(
        Config(
            access_key_id=sts.access_key_id,
            access_key_secret=sts.access_key_secret,
            security_token=sts.security_token,
            endpoint=emu.endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
    )


def sdk_update(emu, sts, changes: dict) -> bytes:
    """UpdateBatch through the IMM product SDK's generated method, the way a hand-written client would call it."""
    client = sdk_client(emu, sts)
    request = models.UpdateBatchRequest().from_map({"ProjectName": PROJECT, "Id": READY, **changes})
    if "Actions" not in changes:
        request.actions = None  # from_map sets [] (which would be sent as Actions=[]); a caller leaves it out
    client.update_batch_with_options(request, RuntimeOptions())
    [call] = emu.calls(action="UpdateBatch")[-1:]
    return call.body


@pytest.mark.parametrize("changes", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_update_batch_body_equals_the_product_sdk(invoke, emu, sts, fn_env, changes):
    fn_env.setenv("IMM_PRECHECK", "false")
    [result] = invoke.direct({"ProjectName": PROJECT, "Id": READY, **changes})["results"]
    assert result["status"] == "updated", result
    [call] = emu.calls(action="UpdateBatch")
    assert call.signing == "ACS3-HMAC-SHA256" and call.access_key_id == sts.access_key_id
    expected = sdk_update(emu, sts, changes)
    assert call.body == expected
    fields = dict(parse_qsl(call.body.decode()))
    assert set(fields) == {"ProjectName", "Id", *changes}  # fields left out are not sent (they keep their value)


def test_get_and_resume_match_the_product_sdk(invoke, emu, sts):
    [result] = invoke.direct({"ProjectName": PROJECT, "Id": FAILED, "Tags": {"k": "v"}, "Resume": True})["results"]
    assert result["status"] == "updated" and result["resumed"] is True, result
    [get_call], [resume_call] = emu.calls(action="GetBatch"), emu.calls(action="ResumeBatch")

    emu.imm.set_state(PROJECT, FAILED, "Failed")
    client = sdk_client(emu, sts)
    client.get_batch(models.GetBatchRequest(project_name=PROJECT, id=FAILED))
    client.resume_batch(models.ResumeBatchRequest(project_name=PROJECT, id=FAILED))
    sdk_get, sdk_resume = emu.calls(action="GetBatch")[-1], emu.calls(action="ResumeBatch")[-1]
    assert (get_call.query, get_call.body) == (sdk_get.query, sdk_get.body) and "Id=" in get_call.query
    assert (resume_call.query, resume_call.body) == (sdk_resume.query, sdk_resume.body)
    assert {c.signing for c in emu.calls(service="imm")} == {"ACS3-HMAC-SHA256"}
