"""Fleet-sized listings (issue #13): `create_batches`, and ListBatches over thousands of batches through the SDK."""

from __future__ import annotations

import time

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

P = "fleet-project"


def list_pages(client, **kwargs) -> list[list[m.DataIngestion]]:
    pages, token = [], None
    while True:
        body = client.list_batches(m.ListBatchesRequest(project_name=P, next_token=token, **kwargs)).body
        pages.append(body.batches)
        token = body.next_token
        if not token:
            return pages


def test_create_batches_returns_ids_in_creation_order(emu):
    ids = emu.imm.create_batches(
        P, 7, state=lambda i: ("Ready", "Failed")[i % 2], tags=lambda i: {"tier": "gold" if i < 3 else "silver"}
    )
    assert len(ids) == len(set(ids)) == 7 and all(i.startswith("batch-") for i in ids)
    listed = emu.imm.list_batches(P)
    assert [b["Id"] for b in listed] == ids
    assert [b["State"] for b in listed] == ["Ready", "Failed"] * 3 + ["Ready"]
    assert [b["Tags"]["tier"] for b in listed] == ["gold"] * 3 + ["silver"] * 4
    assert emu.imm.create_batches(P, 0) == []
    with pytest.raises(ValueError):
        emu.imm.create_batches(P, 1, state="Exploded")


def test_create_batches_copies_what_it_is_given(emu):
    tags = {"tier": "gold"}
    first, second = emu.imm.create_batches(P, 2, tags=tags, id_prefix="batch-copy-")
    tags["tier"] = "changed"
    assert emu.imm.get_batch(P, first)["Tags"] == {"tier": "gold"}
    assert first.startswith("batch-copy-")
    emu.imm.set_state(P, first, "Running")
    assert emu.imm.get_batch(P, second)["State"] == "Ready"


def test_every_page_once_with_filters_over_three_thousand_batches(emu, client):
    gold_failed = set(emu.imm.create_batches(P, 400, state="Failed", tags={"tier": "gold"}))
    emu.imm.create_batches(P, 1300, state="Ready", tags={"tier": "gold"})
    emu.imm.create_batches(P, 1300, state="Failed", tags={"tier": "silver"})
    started = time.monotonic()
    pages = list_pages(client, state="Failed", tag_selector="tier=gold", max_results=100)
    elapsed = time.monotonic() - started
    ids = [b.id for page in pages for b in page]
    assert len(ids) == len(set(ids)) == 400 and set(ids) == gold_failed
    assert [len(p) for p in pages] == [100] * 4
    assert elapsed < 5, f"listing 400 of 3,000 batches took {elapsed:.1f} s"

    started = time.monotonic()
    everything = list_pages(client)  # MaxResults absent: pages of 100
    elapsed = time.monotonic() - started
    assert sum(len(p) for p in everything) == 3000 and len(everything) == 30
    assert elapsed < 10, f"listing 3,000 batches took {elapsed:.1f} s"


def test_listed_batches_carry_what_getbatch_returns(emu, client):
    [batch_id] = emu.imm.create_batches(
        P, 1, state="Failed", tags={"tier": "gold", "n": 2}, actions=[{"Name": "doc/convert", "Parameters": ["a=1"]}]
    )
    [listed] = client.list_batches(m.ListBatchesRequest(project_name=P, tag_selector="tier=gold")).body.batches
    got = client.get_batch(m.GetBatchRequest(project_name=P, id=batch_id)).body.batch
    assert listed.to_map() == got.to_map()
    assert (listed.id, listed.state, listed.tags) == (batch_id, "Failed", {"tier": "gold", "n": 2})
    assert listed.actions[0].parameters == ["a=1"] and listed.input.oss.bucket == "demo-bucket"


def test_listing_while_batches_change(emu, client):
    """A batch updated between pages is neither lost nor listed twice when sorted by CreateTime."""
    ids = emu.imm.create_batches(P, 250, tags={"tier": "gold"})
    first = client.list_batches(m.ListBatchesRequest(project_name=P, max_results=100)).body
    client.update_batch(m.UpdateBatchRequest(project_name=P, id=ids[10], tags={"tier": "gold", "seen": "yes"}))
    seen = [b.id for b in first.batches]
    token = first.next_token
    while token:
        body = client.list_batches(m.ListBatchesRequest(project_name=P, max_results=100, next_token=token)).body
        seen += [b.id for b in body.batches]
        token = body.next_token
    assert seen == ids


@pytest.mark.parametrize("max_results", [1, 50, 100])
def test_page_sizes(emu, client, max_results):
    emu.imm.create_batches(P, 120)
    pages = list_pages(client, max_results=max_results)
    assert all(len(p) <= max_results for p in pages)
    assert sum(len(p) for p in pages) == 120


def test_max_results_bounds_are_imms(emu, client):
    """ListBatches: MaxResults 0-100, 0 meaning 100 (the IMM API reference)."""
    emu.imm.create_batches(P, 3)
    for bad in (101, -1, 1000):
        with pytest.raises(ClientException) as info:
            client.list_batches(m.ListBatchesRequest(project_name=P, max_results=bad))
        assert (info.value.status_code, info.value.code) == (400, "InvalidArgument")
        assert "MaxResults" in info.value.message
