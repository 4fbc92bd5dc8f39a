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
from tests.conftest import examples

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


def test_revert_says_when_an_updated_batch_has_no_diff(invoke, emu, fn_env):
    """IMM_PRECHECK=false, an `Id` document and then a selector for the same batch in one delivery. The `Id`
    document's result has no `diff` (nothing read the batch first): `dev.py revert` dropped it silently, while
    README says what cannot be undone is listed on stderr. The selector's listing is stale (dropped), and the batch
    is read again even without the precheck, so the selector's result still carries its audit diff."""
    fn_env.setenv("IMM_PRECHECK", "false")
    [batch_id] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"g": "nodiff", "v": 0})
    results = invoke.direct(
        [
            {"ProjectName": FLEET, "Id": batch_id, "Tags": {"g": "nodiff", "v": 1}},
            {"ProjectName": FLEET, "Selector": {"TagSelector": "g=nodiff"}, "Tags": {"g": "nodiff", "v": 2}},
        ]
    )["results"]
    assert [r["status"] for r in results] == ["updated", "updated"]
    assert "diff" not in results[0]
    assert results[1]["diff"] == {"Tags": {"from": {"g": "nodiff", "v": 1}, "to": {"g": "nodiff", "v": 2}}}
    documents, notes = revert_documents(results)
    # The selector's change can be undone (back to the Id document's values); the Id document's cannot, and says so.
    assert documents == [{"ProjectName": FLEET, "Id": batch_id, "Tags": {"g": "nodiff", "v": 1}}]
    assert any(batch_id in note and "diff" in note for note in notes), notes


# -- property: apply a random change over a selector, revert it from its results, every batch is back ----------
_runs = itertools.count()
_text = st.sampled_from(["a", "b/c", "x y", "é", "0", "1", "true"])
_scalar = st.one_of(_text, st.integers(-3, 3), st.sampled_from([1.5, 1.0, 0.0]), st.booleans(), st.just(""))
_inputs = st.builds(
    lambda b, p, m: {"OSS": {"Bucket": b, **({"Prefix": p} if p else {}), **({"MatchExpressions": m} if m else {})}},
    st.sampled_from(["bucket-a", "bucket-b"]),
    st.sampled_from([None, "in/", "out/"]),
    st.one_of(st.none(), st.lists(_text, min_size=1, max_size=2)),
)
_actions = st.lists(
    st.builds(
        lambda n, p: {"Name": n, **({"Parameters": p} if p else {})},
        st.sampled_from(["doc/convert", "video/convert"]),
        st.one_of(st.none(), st.lists(_text, min_size=1, max_size=2)),
    ),
    min_size=1,
    max_size=3,
)
_tags = st.dictionaries(st.sampled_from(["k", "n", "flag", "e"]), _scalar, max_size=3)
_change = st.fixed_dictionaries({}, optional={"Input": _inputs, "Actions": _actions, "Tags": _tags}).filter(bool)


def _snapshot(emu, ids):
    return {i: {k: emu.imm.get_batch(FLEET, i).get(k) for k in ("Input", "Actions", "Tags")} for i in ids}


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=examples(30),
)
@given(
    fleet=st.lists(st.tuples(st.sampled_from(["Ready", "Failed"]), _inputs, _actions, _tags), min_size=1, max_size=5),
    change=_change,
    then_id=st.one_of(st.none(), _change),
)
def test_reverting_a_selector_change_restores_every_batch(invoke, emu, fleet, change, then_id):
    group = f"revert-{next(_runs)}"
    ids = []
    for state, input_, actions, tags in fleet:
        ids += emu.imm.create_batches(FLEET, 1, state=state, input=input_, actions=actions, tags={**tags, "grp": group})
    before = _snapshot(emu, ids)
    document = {"ProjectName": FLEET, "Selector": {"TagSelector": f"grp={group}"}, **change}
    documents = [document] + ([{"ProjectName": FLEET, "Id": ids[0], **then_id}] if then_id else [])
    results = invoke.direct(documents)["results"]
    revert, notes = revert_documents(results)
    assert notes == []
    if revert:
        assert {r["status"] for r in invoke.direct(revert)["results"]} == {"updated"}
    assert _snapshot(emu, ids) == before


def test_the_pacer_never_lets_more_than_qps_calls_start_in_any_second_and_keeps_the_deadline():
    qps, starts, lock = 20, [], threading.Lock()
    pacer = Pacer(qps)
    deadline = time.monotonic() + 1.6

    def worker():
        while pacer.acquire(deadline):
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    starts.sort()
    assert starts[-1] <= deadline and len(starts) >= qps  # no one starved the others out of their turns
    assert max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts) <= qps
