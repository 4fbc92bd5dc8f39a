"""`Outcome` has a hand-written `__init__` (one dict instead of fifteen frozen setattrs, see outcome.py): it must take
exactly the dataclass's fields, in order, with their defaults, and stay immutable."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from imm_batch_updater.outcome import ErrorInfo, Outcome, Status, replace


def test_init_takes_exactly_the_fields_in_order_with_their_defaults():
    params = list(inspect.signature(Outcome.__init__).parameters.values())[1:]  # without self
    fields = dataclasses.fields(Outcome)
    assert [p.name for p in params] == [f.name for f in fields]
    for param, field in zip(params, fields, strict=True):
        expected = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        assert param.default == expected, field.name


def test_every_field_set_by_position_or_keyword_reads_back_and_replace_keeps_the_rest():
    values = {f.name: (Status.FAILED if f.name == "status" else f"v-{f.name}") for f in dataclasses.fields(Outcome)}
    by_keyword = Outcome(**values)
    by_position = Outcome(*values.values())
    assert by_keyword == by_position
    assert {name: getattr(by_keyword, name) for name in values} == values
    changed = replace(by_keyword, attempts=7, error=ErrorInfo("C", "m"))
    assert changed.attempts == 7 and changed.error == ErrorInfo("C", "m") and changed.batch_id == "v-batch_id"
    assert by_keyword.attempts == "v-attempts"  # the original is untouched


def test_an_outcome_cannot_be_changed():
    outcome = Outcome(Status.UPDATED, "p", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = Status.FAILED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del outcome.project  # type: ignore[misc]
    assert outcome == Outcome(Status.UPDATED, "p", "b") and hash(outcome.status)


def test_apply_outcome_passes_each_value_to_its_own_field():
    # apply._outcome calls Outcome positionally (bench/README.md): every value must still land in its field.
    from imm_batch_updater.apply import _outcome
    from imm_batch_updater.documents import UpdateRequest

    request = UpdateRequest("p", "b", {}, source="s", message_id="m", index=3)
    error, diff = ErrorInfo("C", "msg"), {"Tags": {"from": None, "to": {}}}
    made = _outcome(request, Status.FAILED, 2, error=error, resumed=True, diff=diff, state="Ready", request_id="r")
    expected = Outcome(
        Status.FAILED,
        project="p",
        batch_id="b",
        error=error,
        resumed=True,
        diff=diff,
        state="Ready",
        attempts=2,
        request_id="r",
        source="s",
        message_id="m",
        index=3,
    )
    assert made == expected
    assert _outcome(request, Status.UPDATED, 1, unchanged=True) == replace(
        expected,
        status=Status.UPDATED,
        error=None,
        resumed=None,
        diff=None,
        state=None,
        attempts=1,
        request_id=None,
        unchanged=True,
    )
