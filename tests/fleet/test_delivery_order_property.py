"""A generator for the whole kind of the stale-view fault: in one delivery, `Id` documents and selectors that
target the same batches, with values that Python's `==` confuses (true and 1, false and 0, "" and a missing
member, 1 and 1.0), must leave every batch holding the values of the last document that targeted it, with the
precheck on (the default), against the emulator through the real SDKs."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PROJECT, examples
from tests.triggers.events import cloud_event, run

# Values Python's == (or a normalisation that drops empty members) could take for one another.
VALUES = st.sampled_from([0, 1, 1.0, 2, True, False, "", "0", "1", "x"])
OPS = st.lists(
    st.one_of(st.tuples(st.just("id"), st.integers(0, 2), VALUES), st.tuples(st.just("selector"), st.none(), VALUES)),
    min_size=2,
    max_size=6,
)
_runs = itertools.count()


def _same_json_value(a: Any, b: Any) -> bool:
    """JSON's equality: a boolean is never a number; 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=examples(40),
)
@given(ops=OPS, start=VALUES)
def test_the_last_document_for_each_batch_wins(invoke, emu, ops, start):
    group = f"order-{next(_runs)}"  # fresh batches per example: the emulator outlives the examples
    ids = emu.imm.create_batches(PROJECT, 3, tags={"g": group, "v": start})
    documents = []
    expected = {batch_id: start for batch_id in ids}
    for kind, index, value in ops:
        tags = {"g": group, "v": value}  # the selector's tag stays, so every selector matches all three
        if kind == "id":
            documents.append({"ProjectName": PROJECT, "Id": ids[index], "Tags": tags})
            expected[ids[index]] = value
        else:
            documents.append({"ProjectName": PROJECT, "Selector": {"TagSelector": f"g={group}"}, "Tags": tags})
            expected = dict.fromkeys(ids, value)
    results = invoke.direct(documents)["results"]
    assert {r["status"] for r in results} == {"updated"}, results
    for batch_id in ids:
        held = emu.imm.get_batch(PROJECT, batch_id)["Tags"]
        assert held["g"] == group and _same_json_value(held["v"], expected[batch_id]), (batch_id, held, documents)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=examples(40),
)
@given(ops=OPS, repeats=st.lists(st.integers(0, 5), max_size=3), start=VALUES)
def test_a_queue_push_with_repeated_messages_keeps_each_result_in_place(invoke, emu, ops, repeats, start):
    """The same kind through an MNS queue batch push, with at-least-once repeats (a message id sent again, after
    any message, selectors included): one result per document and batch, each under its own message id, a repeat
    a `duplicate` copy of its first copy's results, and the last first copy for each batch wins."""
    group = f"push-{next(_runs)}"
    ids = emu.imm.create_batches(PROJECT, 3, tags={"g": group, "v": start})
    messages: list[tuple[str, dict[str, Any]]] = []
    expected = {batch_id: start for batch_id in ids}
    for n, (kind, index, value) in enumerate(ops):
        tags = {"g": group, "v": value}
        if kind == "id":
            messages.append((f"M{n}", {"ProjectName": PROJECT, "Id": ids[index], "Tags": tags}))
            expected[ids[index]] = value
        else:
            document = {"ProjectName": PROJECT, "Selector": {"TagSelector": f"g={group}"}, "Tags": tags}
            messages.append((f"M{n}", document))
            expected = dict.fromkeys(ids, value)
    for position in repeats:  # a repeat goes after everything: it is not applied again, so `expected` holds
        messages.append(messages[position % len(ops)])
    event = [cloud_event(json.dumps(document), message_id) for message_id, document in messages]
    results = run(invoke, event)["results"]
    assert {r["status"] for r in results} == {"updated"}, results
    # In order: each message's results (three for a selector) under its id; a repeat's are marked duplicate and
    # name the same batches as its first copy's.
    expected_rows: list[tuple[str, bool]] = []
    first_batches: dict[str, list[str]] = {}
    position = 0
    for message_id, document in messages:
        count = 3 if "Selector" in document else 1
        mine = results[position : position + count]
        position += count
        repeat = message_id in first_batches
        expected_rows += [(message_id, repeat)] * count
        batches = [r["batch_id"] for r in mine]
        assert batches == first_batches.setdefault(message_id, batches)
    assert position == len(results)
    assert [(r["message_id"], bool(r.get("duplicate"))) for r in results] == expected_rows
    for batch_id in ids:
        held = emu.imm.get_batch(PROJECT, batch_id)["Tags"]
        assert held["g"] == group and _same_json_value(held["v"], expected[batch_id]), (batch_id, held, messages)
