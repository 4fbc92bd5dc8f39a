"""Injected faults and what the real SDK makes of them ."""

from __future__ import annotations

import http.client
import time

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryOptions

from emulator.faults import FaultInjector

P = "demo-project"


def get(client, batch_id: str = "batch-demo-ready"):
    return client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id))


def update(client):
    return client.update_batch(m.UpdateBatchRequest(project_name=P, id="batch-demo-ready", tags={"t": "1"}))


def test_throttle_with_retry_after_is_a_throttling_exception(client, emu):
    emu.faults.inject("UpdateBatch", "throttle", status=429, retry_after=1500)
    with pytest.raises(ThrottlingException) as info:
        update(client)
    assert info.value.retry_after == 1500
    assert (info.value.status_code, info.value.code) == (429, "Throttling.User")
    assert update(client).status_code == 200  # count=1: only the next call


@pytest.mark.parametrize("status", [400, 429])
def test_throttle_without_retry_after_is_a_client_exception(client, emu, status):
    emu.faults.inject("UpdateBatch", "throttle", status=status)
    with pytest.raises(ClientException) as info:
        update(client)
    assert not isinstance(info.value, ThrottlingException)
    assert (info.value.status_code, info.value.code) == (status, "Throttling.User")
    assert info.value.data["HostId"] == "imm.cn-hangzhou.aliyuncs.com"


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("internal", 500, "InternalError"), ("503", 503, "ServiceUnavailable")]
)
def test_5xx_json_is_a_server_exception(client, emu, kind, status, code):
    emu.faults.inject("GetBatch", kind)
    with pytest.raises(ServerException) as info:
        get(client)
    assert (info.value.status_code, info.value.code) == (status, code)


def test_custom_error(client, emu):
    emu.faults.inject("GetBatch", "error", status=403, code="Forbidden.RAM", message="User not authorized.")
    with pytest.raises(ClientException) as info:
        get(client)
    assert (info.value.status_code, info.value.code) == (403, "Forbidden.RAM")


def test_html_502_is_unretryable(client, emu):
    emu.faults.inject("GetBatch", "bad_gateway")
    with pytest.raises(UnretryableException) as info:
        get(client)
    assert "json" in str(info.value.message).lower()


def test_dropped_connection_is_unretryable(client, emu):
    emu.faults.inject("GetBatch", "drop")
    with pytest.raises(UnretryableException):
        get(client)
    assert emu.calls(action="GetBatch")[-1].status == 0
    assert get(client).status_code == 200


def test_latency_past_the_read_timeout(make_client, emu):
    emu.faults.inject("GetBatch", "latency", seconds=0.6)
    start = time.monotonic()
    with pytest.raises(UnretryableException):
        get(make_client(read_timeout=200))
    assert time.monotonic() - start < 0.55


def test_latency_within_the_timeout_still_answers(client, emu):
    emu.faults.inject("GetBatch", "latency", seconds=0.2)
    start = time.monotonic()
    assert get(client).body.batch.id == "batch-demo-ready"
    assert time.monotonic() - start >= 0.2


def test_faults_are_per_action_and_counted(client, emu):
    emu.faults.inject("UpdateBatch", "internal", count=2)
    assert get(client).status_code == 200
    for _ in range(2):
        with pytest.raises(ServerException):
            update(client)
    assert update(client).status_code == 200
    assert emu.faults.count() == 2
    assert emu.faults.count(action="UpdateBatch", kind="internal") == 2
    assert emu.faults.count(action="GetBatch") == 0
    assert [r.status for r in emu.calls(action="UpdateBatch")] == [500, 500, 200]


def test_wildcard_and_unlimited(client, emu):
    emu.faults.inject("*", "unavailable", count=None)
    for call in (get, update, get):
        with pytest.raises(ServerException):
            call(client)
    emu.faults.clear()
    assert get(client).status_code == 200
    assert emu.faults.count(kind="unavailable") == 3


def test_scripted_faults_fire_in_order(client, emu):
    emu.faults.inject("GetBatch", "throttle", status=429)
    emu.faults.inject("GetBatch", "internal")
    with pytest.raises(ClientException):
        get(client)
    with pytest.raises(ServerException):
        get(client)
    assert emu.faults.pending() == 0


def test_sdk_retries_through_injected_faults_with_signed_retry_headers(make_client, emu):
    emu.faults.inject("GetBatch", "unavailable", count=2)
    retry = RetryOptions(
        {
            "retryable": True,
            "retryCondition": [
                {
                    "maxAttempts": 3,
                    "errorCode": ["ServiceUnavailable"],
                    "exception": ["RetryError"],
                    "backoff": {"policy": "Fixed", "period": 10},
                }
            ],
        }
    )
    assert get(make_client(retry_options=retry)).status_code == 200
    assert [r.status for r in emu.calls(action="GetBatch")] == [503, 503, 200]


def test_random_faults_are_reproducible_with_a_seed(client, emu):
    def run() -> list[bool]:
        emu.faults.random(0.5, ["internal"], seed=7)
        outcomes = []
        for _ in range(30):
            try:
                get(client)
                outcomes.append(True)
            except ServerException:
                outcomes.append(False)
        return outcomes

    first, second = run(), run()
    assert first == second
    assert 5 <= first.count(False) <= 25
    emu.faults.clear()
    assert get(client).status_code == 200


def test_random_faults_respect_actions(client, emu):
    emu.faults.random(1.0, ["internal"], seed=1, actions=["UpdateBatch"])
    assert get(client).status_code == 200
    with pytest.raises(ServerException):
        update(client)


def test_fault_uses_the_target_services_error_format(emu):
    emu.faults.inject("GetObject", "internal")
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    conn.request("GET", "/demo-bucket/doc.json")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 500 and body.lstrip().startswith(b"<")
    assert b"InternalError" in body
    assert emu.faults.count(action="GetObject", service="oss") == 1


def test_spec_parsing(client, emu):
    emu.faults.add_spec("UpdateBatch:throttle:2:status=429,retry_after=1500")
    for _ in range(2):
        with pytest.raises(ThrottlingException) as info:
            update(client)
        assert info.value.retry_after == 1500
    assert update(client).status_code == 200


@pytest.mark.parametrize("spec", ["UpdateBatch", "UpdateBatch:explode", "UpdateBatch:throttle:x", "A:throttle:1:oops"])
def test_bad_specs(spec):
    with pytest.raises(ValueError):
        FaultInjector().add_spec(spec)


def test_bad_arguments():
    faults = FaultInjector()
    with pytest.raises(ValueError):
        faults.inject("GetBatch", "throttle", count=0)
    with pytest.raises(ValueError):
        faults.random(1.5)
    with pytest.raises(ValueError):
        faults.random(0.5, [])
