"""The secret-leak guard in tests/conftest.py recognises what it must (so a silent pass means something)."""

from __future__ import annotations

from imm_batch_updater import logs
from imm_batch_updater.webhooks import sign
from tests.conftest import _LOGGED, StsKey, find_leaks, new_secret


def test_registered_secrets_and_signature_shapes_are_found():
    key, secret = StsKey(), new_secret()
    assert find_leaks(f"x {key.access_key_secret} y") and find_leaks(key.security_token)
    assert find_leaks(secret) and find_leaks(secret[6:])
    assert find_leaks(sign(secret, "m", b"{}")["webhook-signature"].replace(secret, ""))
    assert find_leaks("Authorization: ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=" + "ab" * 32)
    assert find_leaks("Authorization: OSS ak:" + "A" * 27 + "=")
    assert not find_leaks('{"status":"updated","project":"demo-project"}')


def test_function_log_lines_are_tapped_even_when_consumed(capsys):
    logs.info("tap check", detail="visible")
    capsys.readouterr()
    assert any("tap check" in line for line in _LOGGED)
