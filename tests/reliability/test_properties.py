"""Property tests (hypothesis + hypothesis-jsonschema): the schema, the validator and what reaches IMM agree.

- every document valid under the schema is accepted and reaches IMM with exactly its fields;
- mutated documents (missing, unknown, wrong-typed, oversized fields) are refused with the right JSON Pointer,
  and IMM is never called.

Example counts follow the hypothesis profile: `ci` (default) or `long` (HYPOTHESIS_PROFILE=long).
"""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from imm_batch_updater.apply import holds
from imm_batch_updater.validation import schema, validate
from tests.conftest import PROJECT, READY, examples

VALID = from_schema(schema())
FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(suppress_health_check=FIXTURES_OK)
@given(doc=VALID)
def test_generated_documents_are_valid(doc):
    assert validate(doc) == []


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=examples(60))
@given(doc=VALID)
def test_valid_documents_reach_imm_with_exactly_their_fields(invoke, emu, doc):
    doc = {k: v for k, v in doc.items() if k not in ("Selector", "MaxBatches")}  # one batch: this one
    doc = {**doc, "ProjectName": PROJECT, "Id": READY, "DryRun": False, "Resume": False}
    emu.imm.set_state(PROJECT, READY, "Ready")
    before = emu.imm.get_batch(PROJECT, READY)
    calls = len(emu.calls(action="UpdateBatch"))
    [result] = invoke.direct(doc)["results"]
    assert result["status"] == "updated", result
    after = emu.imm.get_batch(PROJECT, READY)
    if result.get("unchanged"):  # an earlier example left the same values (e.g. `"Parameters": []` for none)
        assert len(emu.calls(action="UpdateBatch")) == calls and after == before
        changes = {f: doc[f] for f in ("Input", "Actions", "Tags") if f in doc}
        assert changes and holds(before, changes)
        return
    for field in ("Input", "Actions", "Tags"):
        if field in doc:
            assert after[field] == doc[field], field
        else:
            assert after[field] == before[field], field  # left out: kept


def _containers(doc, path=()):
    """Every object in the document that has a closed set of keys, with its JSON path."""
    yield path, doc
    if isinstance(doc.get("Selector"), dict):
        yield ("Selector",), doc["Selector"]
    if isinstance(doc.get("Input"), dict):
        yield ("Input",), doc["Input"]
        if isinstance(doc["Input"].get("OSS"), dict):
            yield ("Input", "OSS"), doc["Input"]["OSS"]
    for i, action in enumerate(doc.get("Actions") or []):
        yield ("Actions", i), action


def _at(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def _pointer(path):
    return "".join(f"/{p}" for p in path)


@st.composite
def mutated(draw):
    """(document, JSON Pointer that must be reported) for one deliberate mistake."""
    doc = copy.deepcopy(draw(VALID))
    kind = draw(st.sampled_from(["unknown", "wrong_type", "missing", "oversize"]))
    if kind == "unknown":
        containers = list(_containers(doc))
        path, target = draw(st.sampled_from(containers))
        name = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyzXYZ", min_size=1, max_size=12))
        if name in target or name in {
            "ProjectName",
            "Id",
            "Input",
            "Actions",
            "Tags",
            "Resume",
            "DryRun",
            "OSS",
            "Bucket",
            "Prefix",
            "MatchExpressions",
            "Name",
            "Parameters",
            "Selector",
            "MaxBatches",
            "State",
            "TagSelector",
        }:
            name = name + "Typo"
        target[name] = draw(st.one_of(st.integers(), st.text(max_size=5)))
        return doc, _pointer((*path, name))
    if kind == "wrong_type":
        field = draw(st.sampled_from(["ProjectName", "Id", "Resume", "DryRun"]))
        doc[field] = draw(st.sampled_from([[], {}, 3.5] if field in ("ProjectName", "Id") else ["yes", 1, None]))
        return doc, f"/{field}"
    if kind == "missing":
        if draw(st.booleans()):
            doc.pop("ProjectName")
            return doc, "/ProjectName"
        doc.pop("Id", None), doc.pop("Selector", None), doc.pop("MaxBatches", None)
        return doc, "/Id"  # exactly one of Id and Selector is required: pointed at Id
    doc["Id"] = "b" * draw(st.integers(129, 5000))
    return doc, "/Id"


@settings(suppress_health_check=FIXTURES_OK, deadline=None)
@given(case=mutated())
def test_mutated_documents_are_refused_with_their_path(invoke, emu, case):
    doc, expected = case
    before = len(emu.calls(service="imm"))
    [result] = invoke.direct(doc)["results"]
    assert result["status"] == "invalid"
    assert expected in [d["path"] for d in result["error"]["details"]], (expected, result["error"]["details"])
    assert len(emu.calls(service="imm")) == before
    assert json.dumps(result)  # serialisable, no exception objects inside


def _fast_valid(doc) -> bool:
    import fastjsonschema

    from imm_batch_updater.validation import fast_check

    try:
        fast_check()(doc)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _full_valid(doc) -> bool:
    from imm_batch_updater.validation import _describer

    return not list(_describer().iter_errors(doc))


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=examples(300))
@given(case=st.one_of(VALID.map(lambda d: (d, "")), mutated()))
def test_fast_and_full_validators_agree(case):
    """The fastjsonschema decision and jsonschema's report never disagree on validity."""
    doc, _ = case
    assert _fast_valid(doc) == _full_valid(doc)


# Strings made of what tells regex dialects apart: line ends where `$` may match, control characters, lone
# surrogates, letters outside ASCII (where `\w`/`\d` differ), and the characters the schema's patterns allow.
TRICKY = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abz09-_/.=")),
        st.sampled_from(["\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff"]),
        st.sampled_from(["\ud800", "\udfff", "é", "ß", "Ж", "٣", "𝟘", "Ａ"]),
    ),
    max_size=12,
).flatmap(lambda t: st.sampled_from([t, t + "\n", "a" + t, "abc" + t + "\n"]))

STRING_FIELDS = [
    ("ProjectName",),
    ("Id",),
    ("Input", "OSS", "Bucket"),
    ("Input", "OSS", "Prefix"),
    ("Actions", 0, "Name"),
    ("Actions", 0, "Parameters", 0),
    ("Tags", "k"),
    ("Selector", "TagSelector"),
    ("Selector", "State"),
]


@st.composite
def tricky_documents(draw):
    doc = {
        "ProjectName": "p",
        "Id": "b",
        "Input": {"OSS": {"Bucket": "demo-bucket", "Prefix": "in/"}},
        "Actions": [{"Name": "doc/convert", "Parameters": ["pages=3"]}],
        "Tags": {"k": "v"},
    }
    path = draw(st.sampled_from(STRING_FIELDS))
    if path[0] == "Selector":
        doc.pop("Id")
        doc["Selector"] = {"State": "Ready"}
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = draw(TRICKY)
    return doc, path


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=examples(600))
@given(case=tricky_documents())
def test_validators_agree_on_strings_that_tell_regex_dialects_apart(case):
    """One validity decision: whatever the string, both validators say the same, and a pattern field that ends
    with a newline (where Python's `$` would still match) is never valid."""
    doc, path = case
    fast = _fast_valid(doc)
    assert fast == _full_valid(doc), (path, doc)
    value = doc
    for part in path:
        value = value[part]
    if path[-1] in ("ProjectName", "Id", "Bucket", "Name", "TagSelector") and value.endswith("\n"):
        assert not fast, (path, value)


# -- diff and holds: what a batch read from IMM is compared with ---------------------------------------------------
def _reference_diff(current, changes):
    """`apply.diff` as first written: every field reduced, every value normalised (the slow, obvious form)."""
    from imm_batch_updater.apply import _normalise, current_values

    now = current_values(current)
    return {
        name: {"from": now.get(name), "to": wanted}
        for name, wanted in changes.items()
        if _normalise(now.get(name), name) != _normalise(wanted, name)
    }


# What IMM may send back: the members an update sets, empty ones, members it adds, values that `==` confuses.
_LEAF = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, 1.0, "", "1", "true", "a", []]))
_PARAMS = st.one_of(st.none(), st.lists(st.sampled_from(["a=1", "b=2", ""]), max_size=2))
_ACTION = st.one_of(
    st.fixed_dictionaries(
        {"Name": st.sampled_from(["doc/convert", "video/x"])},
        optional={"Parameters": _PARAMS, "FastFailPolicy": st.just({"Action": "abort"})},
    ),
    _LEAF,
)
_OSS = st.fixed_dictionaries(
    {"Bucket": st.sampled_from(["in-bucket", "other"])},
    optional={"Prefix": st.sampled_from(["", "a/", None]), "MatchExpressions": _PARAMS, "Extra": _LEAF},
)
_TAGS = st.dictionaries(st.sampled_from(["k", "n", "t"]), st.one_of(_LEAF, st.sampled_from(["v", 2])), max_size=3)
_BATCH = st.fixed_dictionaries(
    {},
    optional={
        "Input": st.one_of(st.fixed_dictionaries({}, optional={"OSS": st.one_of(_OSS, _LEAF)}), _LEAF),
        "Actions": st.one_of(st.lists(_ACTION, max_size=3), _LEAF),
        "Tags": st.one_of(_TAGS, _LEAF),
        "State": st.just("Ready"),
    },
)


_VALID_CHANGE = {
    "Input": st.fixed_dictionaries(
        {"Bucket": st.sampled_from(["in-bucket", "other"])},
        optional={"Prefix": st.sampled_from(["", "a/"]), "MatchExpressions": st.lists(st.just("*.mp4"), max_size=1)},
    ).map(lambda oss: {"OSS": oss}),
    "Actions": st.lists(
        st.fixed_dictionaries(
            {"Name": st.sampled_from(["doc/convert", "video/x"])},
            optional={"Parameters": st.lists(st.sampled_from(["a=1", "b=2"]), max_size=2)},
        ),
        min_size=1,
        max_size=3,
    ),
    "Tags": st.dictionaries(st.sampled_from(["k", "n", "t"]), st.sampled_from(["v", "", "1", 1, 2, True, False])),
}


_TWINS = {(bool, True): 1, (bool, False): 0, (int, 1): True, (int, 0): False, (float, 1.0): 1}


def _twin(value):
    if isinstance(value, dict):
        return {k: _twin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_twin(v) for v in value]
    return _TWINS.get((type(value), value), value)


@st.composite
def _batch_and_changes(draw):
    """A batch and a valid change: new values, or the batch's own (reduced, or raw and so holding what IMM added)
    when a document could carry them, so that equal, nearly equal and different values all come up."""
    from imm_batch_updater.apply import current_values

    batch = draw(_BATCH)
    fields = draw(st.lists(st.sampled_from(["Input", "Actions", "Tags"]), min_size=1, max_size=3, unique=True))
    changes = {}
    for field in fields:
        source = draw(st.sampled_from(["document", "reduced", "raw", "twin"]))
        own = current_values(batch).get(field) if source == "reduced" else batch.get(field)
        if source == "twin":  # the batch's values with each one swapped for its `==` twin (True for 1, ...)
            own = _twin(own)
        if source != "document" and validate({"ProjectName": "p", "Id": "b", field: own}) == []:
            changes[field] = copy.deepcopy(own)
        else:
            changes[field] = draw(_VALID_CHANGE[field])
    return batch, changes


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=examples(400))
@given(case=_batch_and_changes())
def test_diff_is_the_reference_diff_and_a_batch_that_holds_its_values_has_none(case):
    """`apply_update` computes `holds` only when the diff is empty (the usual update has one): that is exact only
    if holding the values implies an empty diff. And `diff`, which compares Tags without normalising when they are
    not `==` and reduces only the requested fields, must equal the obvious form."""
    from imm_batch_updater.apply import diff

    batch, changes = case
    assert diff(batch, changes) == _reference_diff(batch, changes)
    if holds(batch, changes):
        assert diff(batch, changes) == {}
