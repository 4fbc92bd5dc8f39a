"""Webhook verification details beyond the HTTP tests: constant-time comparison and malformed headers."""

from __future__ import annotations

import hmac
import json

import pytest

from imm_batch_updater.webhooks import WebhookAuthError, sign, verify
from tests.conftest import new_secret


def test_signatures_are_compared_in_constant_time(monkeypatch):
    import standardwebhooks.webhooks as lib

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(lib.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    secret = new_secret()
    body = b'{"a": 1}'
    verify([secret], body, sign(secret, "msg_1", body))
    assert calls, "the signature must be checked with hmac.compare_digest"


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-id": "m", "webhook-timestamp": "now", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "{ts}", "webhook-signature": "garbage-without-comma"},
        {"webhook-id": "m", "webhook-timestamp": "{ts}", "webhook-signature": "v1,!!!not-base64!!!"},
        {"webhook-id": "m", "webhook-timestamp": "{ts}", "webhook-signature": "v2,AAAA v1a,BBBB"},
        {"webhook-id": "", "webhook-timestamp": "{ts}", "webhook-signature": "v1,AAAA"},
    ],
)
def test_malformed_headers_are_refused_cleanly(headers):
    import time

    filled = {k: v.replace("{ts}", str(int(time.time()))) for k, v in headers.items()}
    with pytest.raises(WebhookAuthError) as err:
        verify([new_secret()], b"{}", filled)
    assert "AAAA" not in err.value.reason


def test_one_valid_signature_among_several_is_enough():
    old, new = new_secret(), new_secret()
    body = json.dumps({"x": 1}).encode()
    good = sign(new, "msg_2", body)
    good["webhook-signature"] = sign(old, "msg_2", body)["webhook-signature"] + " " + good["webhook-signature"]
    verify([new], body, good)
    with pytest.raises(WebhookAuthError):
        verify([new_secret()], body, good)


def test_malformed_secret_in_config_does_not_open_the_door():
    body = b"{}"
    headers = sign(new_secret(), "msg_3", body)
    with pytest.raises(WebhookAuthError):
        verify(["whsec_%%%not-base64", "not-even-prefixed"], body, headers)
