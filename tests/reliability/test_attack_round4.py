"""Attack round 4: selectors end to end (ListBatches pagination, revert, pacing), through the real IMM SDK against
the emulator."""

from __future__ import annotations

import itertools
import json
import threading
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.revert import revert_documents
from imm_batch_updater.ratelimit import Pacer

FLEET = "round4-project"


def _page(emu, ids, token):
    """A ListBatches answer listing `ids` (as the emulator holds them) and `token`."""
    batches = [emu.imm.get_batch(FLEET, i) for i in ids]
    return json.dumps({"RequestId": "r-page", "Batches": batches, "NextToken": token}).encode()


def test_a_batch_listed_on_two_pages_is_one_match_and_resumed_once(invoke, emu):
    """Pages that change between calls can list a batch twice (B on page 1 and page 2). It was applied twice: an
    `updated`/`resumed` result and then a final `conflict` for the same batch (the second copy re-read it Running),
    i.e. a dead letter for a batch that was updated fine, and two results where the contract says one per batch."""
    a, b, c = emu.imm.create_batches(FLEET, 3, state="Failed", tags={"g": "overlap"})
    emu.faults.inject("ListBatches", "answer", status=200, body=_page(emu, [a, b], "t1"))
    emu.faults.inject("ListBatches", "answer", status=200, body=_page(emu, [b, c], ""))
    doc = {"ProjectName": FLEET, "Selector": {"State": "Failed"}, "Tags": {"g": "overlap", "x": 1}, "Resume": True}
    results = invoke.direct(doc)["results"]
    assert [r["batch_id"] for r in results] == [a, b, c]
    assert [(r["status"], r["resumed"]) for r in results] == [("updated", True)] * 3


def test_a_batch_listed_on_two_pages_counts_once_against_max_batches(invoke, emu):
    """Three distinct batches, one listed twice, MaxBatches 3: was `rejected` TooManyBatches."""
    a, b, c = emu.imm.create_batches(FLEET, 3, state="Ready", tags={"g": "overlap-max"})
    emu.faults.inject("ListBatches", "answer", status=200, body=_page(emu, [a, b], "t1"))
    emu.faults.inject("ListBatches", "answer", status=200, body=_page(emu, [b, c], ""))
    doc = {"ProjectName": FLEET, "Selector": {"TagSelector": "g=overlap-max"}, "Tags": {"x": 1}, "MaxBatches": 3}
    results = invoke.direct(doc)["results"]
    assert [(r["batch_id"], r["status"]) for r in results] == [(a, "updated"), (b, "updated"), (c, "updated")]
