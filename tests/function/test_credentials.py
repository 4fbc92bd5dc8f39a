"""Role credentials: context first, then environment, refreshed every invocation, never logged."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from imm_batch_updater.credentials import Credentials, resolve
from tests.conftest import PROJECT, READY, StsKey, fc_context

DOC = {"ProjectName": PROJECT, "Id": READY, "Tags": {"k": "v"}}


def test_context_credentials_sign_the_calls(invoke, emu, sts):
    assert invoke.direct(DOC)["results"][0]["status"] == "updated"
    assert {c.access_key_id for c in emu.calls(service="imm")} == {sts.access_key_id}


def test_env_credentials_when_the_context_has_none(invoke, emu, fn_env):
    # python3.12 runtime: no context.credentials, keys in ALIBABA_CLOUD_* variables.
    key = StsKey()
    emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key.access_key_id)
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.access_key_secret)
    fn_env.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", key.security_token)
    context = fc_context(None)
    del context.credentials
    assert invoke.direct(DOC, context=context)["results"][0]["status"] == "updated"
    assert {c.access_key_id for c in emu.calls(service="imm")} == {key.access_key_id}


def test_context_wins_over_env(fn_env, sts):
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-ak")
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
    assert resolve(fc_context(sts)).access_key_id == sts.access_key_id
    assert resolve(SimpleNamespace(credentials=None)).source == "env"


def test_rotation_between_invocations(invoke, emu, sts):
    assert invoke.direct(DOC)["results"][0]["status"] == "updated"
    rotated = StsKey()
    emu.keyring.add(rotated.access_key_id, rotated.access_key_secret, rotated.security_token)
    emu.keyring.remove(sts.access_key_id)  # the old STS key is gone
    result = invoke.direct({**DOC, "Tags": {"k": "2"}}, context=fc_context(rotated))
    assert result["results"][0]["status"] == "updated"
    assert emu.calls(service="imm")[-1].access_key_id == rotated.access_key_id


def test_same_key_with_a_new_token_is_picked_up(invoke, emu, sts):
    assert invoke.direct(DOC)["results"][0]["status"] == "updated"
    sts.security_token = "tok-renewed"
    emu.keyring.add(sts.access_key_id, sts.access_key_secret, sts.security_token)  # the old token is invalid now
    assert invoke.direct({**DOC, "Tags": {"k": "3"}})["results"][0]["status"] == "updated"


def test_expired_token_is_fetched_again_and_retried_once(invoke, emu, fn_env):
    # The context carries an expired token; the environment (read on retry) has a fresh key.
    stale, fresh = StsKey(), StsKey()
    for k in (stale, fresh):
        emu.keyring.add(k.access_key_id, k.access_key_secret, k.security_token)
    emu.faults.inject(
        "GetBatch",
        "error",
        count=1,
        status=400,
        code="InvalidSecurityToken.Expired",
        message="Specified SecurityToken is expired.",
    )
    result = invoke.direct(DOC, context=fc_context(stale))
    assert result["results"][0]["status"] == "updated"
    assert len(emu.calls(action="GetBatch")) == 2


def test_expired_token_twice_is_failed_for_the_platform_to_retry(invoke, emu, capsys):
    """Not final: the document is not at fault, and FC gives the next invocation the role's current keys."""
    emu.faults.inject(
        "GetBatch",
        "error",
        count=2,
        status=400,
        code="InvalidSecurityToken.Expired",
        message="Specified SecurityToken is expired.",
    )
    with pytest.raises(DeliveryIncomplete, match="failed"):
        invoke.direct(DOC)
    assert len(emu.calls(action="GetBatch")) == 2 and emu.calls(action="UpdateBatch") == []
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"outcome"' in x]
    assert (line["status"], line["error_code"], line["final"]) == ("failed", "InvalidSecurityToken.Expired", False)
    assert invoke.direct(DOC)["results"][0]["status"] == "updated"  # the redelivery


def test_missing_token_for_an_sts_key_is_rejected(invoke, emu, sts):
    context = fc_context(sts)
    context.credentials.security_token = None
    [result] = invoke.direct(DOC, context=context)["results"]
    assert result["status"] == "rejected" and result["error"]["code"].startswith("InvalidSecurityToken")


def test_no_credentials_anywhere_is_failed_not_a_crash(invoke, monkeypatch):
    import imm_batch_updater.credentials as creds

    monkeypatch.setattr(creds, "from_default_chain", lambda: None)  # no profile/ECS role on this machine
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(DOC, context=fc_context(None))


def test_no_imm_endpoint_is_failed_and_a_redelivery_applies_it_once_configured(invoke, emu, fn_env, sts, capsys):
    """README "Outcomes": IMM cannot be called yet (no IMM_ENDPOINT, no region anywhere): `failed`
    ConfigurationError, not final, so the platform's redelivery applies the document after the fix."""
    fn_env.delenv("IMM_ENDPOINT")
    fn_env.delenv("IMM_REGION")
    context = fc_context(sts)
    context.region = None
    with pytest.raises(DeliveryIncomplete, match="failed"):
        invoke.direct(DOC, context=context)
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"outcome"' in x]
    assert (line["status"], line["error_code"], line["final"]) == ("failed", "ConfigurationError", False)
    assert "IMM_ENDPOINT" in line["error_message"]  # names what to set
    assert emu.calls(service="imm") == []
    fn_env.setenv("IMM_ENDPOINT", emu.endpoint)  # the fix; then the platform delivers the event again
    assert invoke.direct(DOC, context=context)["results"][0]["status"] == "updated"


def test_credentials_repr_hides_secrets():
    text = repr(Credentials("ak-visible", "secret-hidden", "token-hidden", "env"))
    assert "ak-visible" in text and "secret-hidden" not in text and "token-hidden" not in text


def test_secrets_never_reach_the_output(invoke, emu, sts, capsys, webhook_secret):
    emu.faults.inject("UpdateBatch", "bad_gateway", count=2)
    emu.faults.inject("GetBatch", "drop", count=1)
    invoke.direct(DOC)
    invoke.post(DOC)
    invoke.post(DOC, sign=False)
    out = capsys.readouterr()
    for secret in (sts.access_key_secret, sts.security_token, webhook_secret, webhook_secret[6:]):
        assert secret not in out.out and secret not in out.err


def test_the_sdk_client_is_reused_while_credentials_are_unchanged(invoke, emu, sts):
    from imm_batch_updater import imm

    imm._clients.clear()
    invoke.direct(DOC)
    first = imm._clients_last[1]
    invoke.direct({**DOC, "Tags": {"k": "again"}})
    assert len(imm._clients) == 1 and imm._clients_last[1] is first
    rotated = StsKey()
    emu.keyring.add(rotated.access_key_id, rotated.access_key_secret, rotated.security_token)
    invoke.direct(DOC, context=fc_context(rotated))
    assert len(imm._clients) == 2 and all(k[2][0] in {sts.access_key_id, rotated.access_key_id} for k in imm._clients)
    assert imm._clients_last[1] is not first and imm._clients_last[0][2][0] == rotated.access_key_id
    invoke.direct(DOC)  # the first keys again: their client, from the cache
    assert imm._clients_last[1] is first and len(imm._clients) == 2
