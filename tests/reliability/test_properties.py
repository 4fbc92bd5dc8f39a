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
from tests.conftest import PROJECT, READY

VALID = from_schema(schema())
FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(suppress_health_check=FIXTURES_OK)
@given(doc=VALID)
def test_generated_documents_are_valid(doc):
    assert validate(doc) == []


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=60)
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


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=300)
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


@settings(suppress_health_check=FIXTURES_OK, deadline=None, max_examples=600)
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
