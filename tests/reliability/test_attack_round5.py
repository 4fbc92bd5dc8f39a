"""Round 5 attack findings: the HTTP path (Standard Webhooks, replay guard) and the webhook sink."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROJECT, READY, new_secret, signed_headers
from tests.sinks.conftest import receiver  # noqa: F401 -- the fixture

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


@pytest.mark.parametrize("shape", ["+{ts}", " {ts} ", "0{ts}", "{ts}\n", "{a}_{b}", "{arabic}"])
def test_a_timestamp_that_is_not_plain_unix_seconds_is_refused(invoke, emu, shape):
    """The library signs `str(floor(float(header)))`, not the header: "+T", " T ", "0T", "T\\n", "1_7..." and
    non-ASCII digits verified against a signature over "T", text the sender never sent. Unix seconds are digits."""
    import time

    from imm_batch_updater.webhooks import sign

    raw = json.dumps(UPDATE).encode()
    ts = str(int(time.time()))
    headers = sign(invoke.secret, "msg_r5_ts", raw, int(ts))
    arabic = ts.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    headers["webhook-timestamp"] = shape.format(ts=ts, a=ts[:1], b=ts[1:], arabic=arabic)
    assert invoke.post(body=raw, sign=False, headers=headers)[0] == 401
    assert emu.calls(service="imm") == []


def test_plain_timestamps_at_the_edge_of_the_window_still_verify(invoke, emu):
    import time

    for skew in (-290, 290):
        raw = json.dumps(UPDATE).encode()
        headers = signed_headers(invoke.secret, raw, timestamp=int(time.time()) + skew)
        assert invoke.post(body=raw, sign=False, headers=headers)[0] == 200


def test_the_same_webhook_id_with_another_body_is_not_answered_from_the_other_bodys_memory(invoke, emu):
    """The replay memory was keyed by webhook-id alone: a second, validly signed body under a reused id got the
    first body's remembered answer (200 `updated` for the first batch) and was silently never applied."""
    from tests.conftest import RUNNING

    first_raw = json.dumps(UPDATE).encode()
    other_raw = json.dumps({"ProjectName": PROJECT, "Id": RUNNING, "Tags": {"owner": "round5"}}).encode()
    status, body, _ = invoke.post(body=first_raw, sign=False, headers=signed_headers(invoke.secret, first_raw, "m5"))
    assert status == 200 and body["results"][0]["batch_id"] == READY
    status, body, _ = invoke.post(body=other_raw, sign=False, headers=signed_headers(invoke.secret, other_raw, "m5"))
    assert status == 409 and body["results"][0]["batch_id"] == RUNNING  # its own answer: the batch is Running
    # The first body's retry is still answered from memory, not applied again.
    updates = len(emu.calls(action="UpdateBatch"))
    status, body, _ = invoke.post(body=first_raw, sign=False, headers=signed_headers(invoke.secret, first_raw, "m5"))
    assert status == 200 and body["results"][0]["batch_id"] == READY
    assert len(emu.calls(action="UpdateBatch")) == updates


def test_the_webhook_sink_sends_an_outcome_whose_imm_message_holds_a_lone_surrogate(invoke, emu, receiver, fn_env):  # noqa: F811
    """IMM's message `"bad \\ud800 value"` decodes to a lone surrogate; the sink's `json.dumps(...).encode()` raised
    UnicodeEncodeError, so the notification (here a dead letter) was never sent."""
    from standardwebhooks.webhooks import Webhook

    sink_secret = new_secret()
    fn_env.setenv("RESULT_WEBHOOK_URL", receiver.url + "/hooks/imm")
    fn_env.setenv("RESULT_WEBHOOK_SECRET", sink_secret)
    body = b'{"RequestId": "r5", "Code": "InvalidParameter", "Message": "bad \\ud800 value"}'
    emu.faults.inject("UpdateBatch", "answer", status=400, body=body)
    result = invoke.direct(UPDATE)
    assert result["results"][0]["status"] == "rejected"
    [request] = receiver.requests
    payload = Webhook(sink_secret).verify(request.body.decode(), request.headers)
    assert payload["data"]["results"][0]["status"] == "rejected"
