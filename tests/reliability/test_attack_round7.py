"""Round 7 attack findings: how trigger events are recognised, decoded and answered.

- An HTTP request sent with `X-Fc-Invocation-Type: Async` is an asynchronous invocation: FC answers the client 202
  at once and the function's return value only reaches the async destination. A `failed`/`throttled` result
  answered as a 502/429 response struct was then lost: nobody sees the status, and FC does not retry an invocation
  that returned. Such a request now raises `DeliveryIncomplete` after reporting, like every event trigger, so FC's
  async retry delivers it again; final results (including 4xx client errors) are still answered, never raised.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler
from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import PROJECT, READY, RUNNING, examples, fc_context, http_event, signed_headers

FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
UPDATE = {"ProjectName": PROJECT, "Id": READY, "Tags": {"env": "prod"}}


def _event(invoke, document, extra_headers):
    raw = json.dumps(document).encode()
    return http_event("POST", "/", raw, {**signed_headers(invoke.secret, raw), **extra_headers})


def _post(invoke, document, extra_headers):
    return handler.handler(_event(invoke, document, extra_headers), fc_context(invoke.sts))


_ASYNC_NAMES = st.sampled_from(["X-Fc-Invocation-Type", "x-fc-invocation-type", "X-FC-INVOCATION-TYPE"])
_ASYNC_VALUES = st.sampled_from(["Async", "async", "ASYNC", " Async "])


@settings(max_examples=examples(8), deadline=None, suppress_health_check=FIXTURES_OK)
@given(name=_ASYNC_NAMES, value=_ASYNC_VALUES)
def test_an_async_http_request_whose_update_is_not_final_is_retried_by_fc(invoke, emu, name, value):
    emu.faults.clear()
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    tags = {"env": f"{name}={value}"}
    event = _event(invoke, {**UPDATE, "Tags": tags}, {name: value})
    with pytest.raises(DeliveryIncomplete, match="not final"):
        handler.handler(event, fc_context(invoke.sts))
    emu.faults.clear()
    # FC's retry delivers the same event (same webhook-id and body): applied, not answered from the replay memory.
    assert handler.handler(event, fc_context(invoke.sts))["statusCode"] == 200
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == tags


def test_an_async_http_request_with_only_final_results_is_answered_not_raised(invoke, emu):
    headers = {"X-Fc-Invocation-Type": "Async"}
    assert _post(invoke, {**UPDATE, "Id": RUNNING}, headers)["statusCode"] == 409
    assert _post(invoke, {"ProjectName": PROJECT}, headers)["statusCode"] == 400
    raw = json.dumps(UPDATE).encode()
    unsigned = handler.handler(http_event("POST", "/", raw, headers), fc_context(invoke.sts))
    assert unsigned["statusCode"] == 401


def test_a_sync_http_request_that_failed_is_still_a_502_answer(invoke, emu):
    emu.faults.inject("UpdateBatch", "unavailable", count=None)
    for headers in ({}, {"X-Fc-Invocation-Type": "Sync"}):
        assert _post(invoke, UPDATE, headers)["statusCode"] == 502
