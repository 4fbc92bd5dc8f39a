"""ListBatches: paging with an opaque NextToken, State and TagSelector filters, Sort and Order."""

from __future__ import annotations

import base64

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

P = "list-project"


@pytest.fixture
def batches(emu, clock) -> list[str]:
    """Seven batches created one minute apart; states and tags vary."""
    ids = []
    for i in range(7):
        state = ("Ready", "Running", "Failed")[i % 3]
        ids.append(emu.imm.create_batch(P, id=f"batch-{i:02d}", state=state, tags={"team": f"t{i % 2}", "n": i}))
        clock.advance(60)
    return ids


def list_all(client, **kwargs) -> tuple[list[str], list[str]]:
    """Follow NextToken to the end; returns (ids, tokens)."""
    ids, tokens, token = [], [], None
    while True:
        body = client.list_batches(m.ListBatchesRequest(project_name=P, next_token=token, **kwargs)).body
        ids += [b.id for b in body.batches]
        token = body.next_token
        if not token:
            return ids, tokens
        tokens.append(token)


def test_pages_cover_everything_once_in_create_order(client, batches):
    ids, tokens = list_all(client, max_results=3)
    assert ids == batches
    assert len(tokens) == 2
    for token in tokens:
        base64.b64decode(token, validate=True)  # opaque, but base64 like IMM's


def test_descending_order(client, batches):
    ids, _ = list_all(client, max_results=2, order="DES")
    assert ids == list(reversed(batches))


def test_sort_by_update_time(client, clock, batches):
    clock.advance(3600)
    client.update_batch(m.UpdateBatchRequest(project_name=P, id="batch-00", tags={"touched": "yes"}))
    ids, _ = list_all(client, sort="UpdateTime", max_results=4)
    assert ids == batches[1:] + ["batch-00"]
    ids, _ = list_all(client, sort="CreateTime")
    assert ids == batches


def test_state_filter(client, batches):
    ids, _ = list_all(client, state="Failed", max_results=1)
    assert ids == ["batch-02", "batch-05"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=t1", ["batch-01", "batch-03", "batch-05"]),
        ("n=4", ["batch-04"]),  # a number tag matches its text
        ("team=none", []),
        ("nokey=t1", []),
        ("team=t1=x", []),  # the value is everything after the first "="
    ],
)
def test_tag_selector(client, batches, selector, expected):
    ids, _ = list_all(client, tag_selector=selector)
    assert ids == expected


@pytest.mark.parametrize("selector", ["team", "=t1", " =t1", "team\n=t1", "team=t1\n"])
def test_malformed_tag_selector_is_refused(client, batches, selector):
    """IMM documents TagSelector as key=value only (ListBatches: `test=val1`): anything else is refused."""
    with pytest.raises(ClientException) as info:
        client.list_batches(m.ListBatchesRequest(project_name=P, tag_selector=selector))
    assert (info.value.status_code, info.value.code) == (400, "InvalidArgument")
    assert "TagSelector" in info.value.message


def test_filters_combine(client, batches):
    ids, _ = list_all(client, state="Running", tag_selector="team=t1")
    assert ids == ["batch-01"]


def test_max_results_zero_means_one_hundred(client, emu):
    for i in range(105):
        emu.imm.create_batch(P, id=f"batch-many-{i:03d}")
    body = client.list_batches(m.ListBatchesRequest(project_name=P, max_results=0)).body
    assert len(body.batches) == 100 and body.next_token
    rest = client.list_batches(m.ListBatchesRequest(project_name=P, next_token=body.next_token)).body
    assert len(rest.batches) == 5 and rest.next_token == ""


def test_deleted_batch_does_not_break_paging(client, emu, batches):
    first = client.list_batches(m.ListBatchesRequest(project_name=P, max_results=3)).body
    emu.imm.delete_batch(P, "batch-03")
    body = client.list_batches(m.ListBatchesRequest(project_name=P, max_results=10, next_token=first.next_token)).body
    rest = [b.id for b in body.batches]
    assert rest == ["batch-04", "batch-05", "batch-06"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_results": 101},
        {"max_results": -1},
        {"order": "SIDEWAYS"},
        {"sort": "Name"},
        {"state": "Succeed"},
        {"next_token": "not a token!"},
        {"next_token": base64.b64encode(b'{"l":["other"],"c":[0,0]}').decode()},
    ],
)
def test_invalid_list_parameters(client, batches, kwargs):
    with pytest.raises(ClientException) as info:
        client.list_batches(m.ListBatchesRequest(project_name=P, **kwargs))
    assert (info.value.status_code, info.value.code) == (400, "InvalidArgument")


def test_token_is_bound_to_its_filters(client, batches):
    token = client.list_batches(m.ListBatchesRequest(project_name=P, max_results=1)).body.next_token
    with pytest.raises(ClientException) as info:
        client.list_batches(m.ListBatchesRequest(project_name=P, max_results=1, state="Ready", next_token=token))
    assert "NextToken" in info.value.message


def test_unknown_project(client):
    with pytest.raises(ClientException) as info:
        client.list_batches(m.ListBatchesRequest(project_name="nope"))
    assert (info.value.status_code, info.value.code) == (404, "ResourceNotFound")
