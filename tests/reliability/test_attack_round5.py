"""Round 5 attack findings: the HTTP path (Standard Webhooks, replay guard) and the webhook sink."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROJECT, READY, signed_headers

UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"owner": "round5"}}


@pytest.mark.parametrize(
    "prefix",
    [
        "v1,c29tZQ== ",  # a v1 signature made with another (retired) secret
        "v1a,c29tZQ v1,bad ",  # an asymmetric signature, then a v1 entry that is not valid base64
        "v1,abc ",  # a v1 entry whose base64 lacks its padding
        "v2,a,b ",  # an unknown version whose value holds a comma
        "v1 ",  # an entry with no comma
        " ",  # a leading space (two spaces between entries)
    ],
)
def test_a_valid_signature_is_found_whatever_entries_come_before_it(invoke, emu, prefix):
    """Standard Webhooks: a space-separated list, any one matching v1 signature authenticates. The library raised
    on the first entry it could not split or decode, so a valid signature after it was never checked (401)."""
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw)
    headers["webhook-signature"] = prefix + headers["webhook-signature"]
    status, body, _ = invoke.post(body=raw, sign=False, headers=headers)
    assert status == 200, body


@pytest.mark.parametrize("entry", ["v1,abc", "v2,a,b", "v1", "", "v1,!!!!"])
def test_malformed_entries_alone_are_still_refused(invoke, emu, entry):
    raw = json.dumps(UPDATE).encode()
    headers = signed_headers(invoke.secret, raw)
    headers["webhook-signature"] = entry
    assert invoke.post(body=raw, sign=False, headers=headers)[0] == 401
    assert emu.calls(service="imm") == []
