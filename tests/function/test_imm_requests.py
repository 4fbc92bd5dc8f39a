"""The function's IMM requests carry exactly the fields the document gives, through the official IMM SDK.

UpdateBatch sends `Input`, `Actions` and `Tags` as compact JSON strings in form fields; a field the document leaves
out is not sent, so the batch keeps its value. The SDK's own trap is covered here: `UpdateBatchRequest.from_map`
always sets `actions` to a list, and an empty list is sent as `Actions=[]`, which clears the batch's actions; the
function builds requests from the given fields instead (imm.update_request).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from tests.conftest import FAILED, PROJECT, READY

DOCUMENTS = [
    {"Tags": {"owner": "media-team"}},
    # Non-ASCII, characters the form encoding escapes, numbers, and the Tags order the caller chose.
    {"Tags": {"z-last": "été 中文", "a+b": "x=y&z", "n": 1}},
    {
        "Input": {"OSS": {"Prefix": "in/", "Bucket": "demo-bucket", "MatchExpressions": ["*.mp4", "*.mov"]}},
        "Actions": [{"Parameters": ["target=mp4", "q=中"], "Name": "video/convert"}, {"Name": "doc/convert"}],
        "Tags": {"b": "2", "a": "1"},
    },
    {"Actions": [{"Name": "video/convert", "Parameters": []}]},
    {"Input": {"OSS": {"Bucket": "demo-bucket"}}},
]


def _without_empty(value):
    """What a model round trip may drop: empty lists and missing members are the same to IMM."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v not in (None, [])}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


@pytest.mark.parametrize("changes", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_update_batch_sends_exactly_the_documents_fields(invoke, emu, sts, fn_env, changes):
    fn_env.setenv("IMM_PRECHECK", "false")
    before = emu.imm.get_batch(PROJECT, READY)
    [result] = invoke.direct({"ProjectName": PROJECT, "Id": READY, **changes})["results"]
    assert result["status"] == "updated", result
    [call] = emu.calls(action="UpdateBatch")
    assert call.signing == "ACS3-HMAC-SHA256" and call.access_key_id == sts.access_key_id
    fields = dict(parse_qsl(call.body.decode()))
    assert set(fields) == {"ProjectName", "Id", *changes}  # fields left out are not sent (they keep their value)
    for name, value in changes.items():
        assert _without_empty(json.loads(fields[name])) == _without_empty(value), name
    after = emu.imm.get_batch(PROJECT, READY)
    for name in {"Input", "Actions", "Tags"} - set(changes):
        assert after[name] == before[name], name  # in particular: Actions never cleared by an empty list


def test_get_and_resume_send_project_and_id_only(invoke, emu, sts):
    [result] = invoke.direct({"ProjectName": PROJECT, "Id": FAILED, "Tags": {"k": "v"}, "Resume": True})["results"]
    assert result["status"] == "updated" and result["resumed"] is True, result
    [get_call], [resume_call] = emu.calls(action="GetBatch"), emu.calls(action="ResumeBatch")
    assert dict(parse_qsl(get_call.query)).items() >= {"Id": FAILED, "ProjectName": PROJECT}.items()
    assert dict(parse_qsl(resume_call.body.decode())) == {"Id": FAILED, "ProjectName": PROJECT}
    assert {c.signing for c in emu.calls(service="imm")} == {"ACS3-HMAC-SHA256"}


def test_the_app_builds_its_imm_client_with_each_value_in_its_field(fn_env, sts, monkeypatch):
    # App._imm_client calls ImmClient positionally (bench/README.md): every value must still land in its field.
    from imm_batch_updater.app import App
    from imm_batch_updater.config import Settings
    from imm_batch_updater.context import InvocationContext
    from tests.conftest import fc_context

    monkeypatch.setenv("IMM_MAX_QPS", "5")
    Settings.reload()
    try:
        ctx = InvocationContext(fc_context(sts), Settings.current())
        client = App._imm_client(ctx, 3)
    finally:
        Settings.reload()
    assert client.endpoint.url == "http://" + str(ctx.settings.imm_endpoint) and client.region == "cn-hangzhou"
    assert client.credentials.access_key_id == sts.access_key_id and client.deadline is ctx.deadline
    assert (client.connect_timeout_ms, client.read_timeout_ms) == (
        ctx.settings.connect_timeout_ms,
        ctx.settings.read_timeout_ms,
    )
    assert client.policy.max_attempts == ctx.settings.max_attempts and client.budget is not None
    assert client.refresh_credentials == ctx.credentials and client.pacer is not None
