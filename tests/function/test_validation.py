"""The request-document schema and its error reporting (no IMM needed)."""

from __future__ import annotations

import json

import pytest

from imm_batch_updater.config import Settings
from imm_batch_updater.documents import UpdateRequest, documents_of
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.sources.base import Message
from imm_batch_updater.validation import schema, validate

VALID = {
    "ProjectName": "demo-project",
    "Id": "batch-demo-ready",
    "Input": {"OSS": {"Bucket": "demo-bucket", "Prefix": "in/", "MatchExpressions": ["suffix .docx"]}},
    "Actions": [{"Name": "doc/convert", "Parameters": ["pages=3"]}],
    "Tags": {"team": "media", "priority": 3, "urgent": False},
    "Resume": True,
    "DryRun": False,
}


def paths(doc):
    return [(p.path, p.message) for p in validate(doc)]


def test_schema_is_draft_2020_12_and_compiles():
    from jsonschema import Draft202012Validator

    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema())


def test_full_document_is_valid():
    assert validate(VALID) == []


@pytest.mark.parametrize("field", ["Input", "Actions", "Tags"])
def test_any_one_change_field_is_enough(field):
    assert validate({"ProjectName": "p", "Id": "b", field: VALID[field]}) == []


def test_no_change_field_is_refused():
    assert paths({"ProjectName": "p", "Id": "b", "Resume": True}) == [
        ("", "at least one of Input, Actions, Tags is required")
    ]


def test_missing_required_fields_point_at_the_field():
    problems = paths({"Tags": {"a": "b"}})
    assert ("/Id", "is required (or Selector instead)") in problems and ("/ProjectName", "is required") in problems


@pytest.mark.parametrize(
    ("mutation", "path"),
    [
        (lambda d: d.update(Resum=True), "/Resum"),
        (lambda d: d["Input"].update(Oss={}), "/Input/Oss"),
        (lambda d: d["Input"]["OSS"].update(Buckt="x"), "/Input/OSS/Buckt"),
        (lambda d: d["Actions"][0].update(FastFailPolicy={"Action": "abort"}), "/Actions/0/FastFailPolicy"),
    ],
)
def test_unknown_keys_are_errors_at_every_level(mutation, path):
    doc = json.loads(json.dumps(VALID))
    mutation(doc)
    assert (path, "unknown field (not allowed here)") in paths(doc)


def test_tags_are_free_form_but_typed_and_bounded():
    assert validate({"ProjectName": "p", "Id": "b", "Tags": {"any key at all": "v", "n": 1.5, "b": True}}) == []
    problems = paths({"ProjectName": "p", "Id": "b", "Tags": {"k": {"nested": 1}, "l": "x" * 257, "": "v"}})
    assert ("/Tags/k", "must be of type string or number or boolean") in problems
    assert ("/Tags/l", "must be at most 256 characters long") in problems
    assert ("/Tags", "every key must be 1 to 128 characters long, without control characters") in problems
    assert paths({"ProjectName": "p", "Id": "b", "Tags": {str(i): i for i in range(51)}}) == [
        ("/Tags", "must have at most 50 entries")
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"ProjectName": 5, "Id": "b", "Tags": {"a": "b"}}, ("/ProjectName", "must be of type string")),
        ({"ProjectName": "p", "Id": "", "Tags": {"a": "b"}}, ("/Id", "must be at least 1 characters long")),
        ({"ProjectName": "p", "Id": "b", "Actions": []}, ("/Actions", "must have at least 1 item(s)")),
        ({"ProjectName": "p", "Id": "b", "Actions": [{"Name": "x" * 3}]}, ("/Actions/0/Name", None)),
        ({"ProjectName": "p", "Id": "b", "Actions": [{"Parameters": ["a"]}]}, ("/Actions/0/Name", "is required")),
        ({"ProjectName": "p", "Id": "b", "Input": {"OSS": {"Bucket": "A_B"}}}, ("/Input/OSS/Bucket", None)),
        ({"ProjectName": "p", "Id": "b", "Input": {}}, ("/Input/OSS", "is required")),
        ({"ProjectName": "p", "Id": "b", "Tags": {"a": "b"}, "DryRun": "yes"}, ("/DryRun", "must be of type boolean")),
        ({"ProjectName": "p", "Id": "b", "Actions": [{"Name": "doc/convert"}] * 21}, ("/Actions", None)),
    ],
)
def test_each_rule_names_its_json_pointer(doc, expected):
    found = paths(doc)
    path, message = expected
    assert any(p == path and (message is None or m == message) for p, m in found), found


def test_errors_never_echo_values():
    secret_value = "AKIA-very-secret-value-123"
    doc = {"ProjectName": "p", "Id": "b", "Tags": {"k": [secret_value]}, "Input": {"OSS": {"Bucket": secret_value}}}
    text = json.dumps([p.to_dict() for p in validate(doc)])
    assert secret_value not in text and "/Input/OSS/Bucket" in text


def parse(body, **env):
    """What a trigger makes of a message body: decoded once (`_body.decode_body`), then split and validated."""
    from imm_batch_updater.sources._body import decode_body

    settings = Settings.from_env(env)
    decoded = decode_body(body, "/body", settings.max_body_bytes, base64_allowed=False)
    return documents_of(Message.of("direct", "m1", decoded), settings)


def test_not_json_is_invalid_with_a_whole_document_path():
    [result] = parse(b"{not json")
    assert isinstance(result, Outcome) and result.status == "invalid"
    assert result.error.details[0].path == "" and "not valid JSON" in result.error.details[0].message


@pytest.mark.parametrize("body", [b"\xff\xfe\x00", b'{"a": NaN}', b"[" * 100_000])
def test_undecodable_bodies_are_invalid_not_crashes(body):
    [result] = parse(body)
    assert result.status == "invalid" and result.error.details


def test_empty_array_and_bulk_limit():
    [empty] = parse(b"[]")
    assert empty.status == "invalid" and empty.error.code == "EmptyArray"
    doc = {"ProjectName": "p", "Id": "b", "Tags": {"a": "b"}}
    [too_many] = parse(json.dumps([doc] * 4).encode(), MAX_DOCUMENTS="3")
    assert too_many.status == "invalid" and "at most 3" in too_many.error.message
    assert len(parse(json.dumps([doc] * 3).encode(), MAX_DOCUMENTS="3")) == 3


def test_bulk_items_are_validated_one_by_one_with_their_index():
    good = {"ProjectName": "p", "Id": "b", "Tags": {"a": "b"}}
    items = parse(json.dumps([good, {"ProjectName": "p", "Id": "c"}]).encode())
    assert isinstance(items[0], UpdateRequest) and items[0].index == 0
    assert isinstance(items[1], Outcome) and items[1].index == 1 and items[1].batch_id == "c"


def test_imm_project_fills_a_missing_project_name():
    [item] = parse(b'{"Id": "b", "Tags": {"a": "b"}}', IMM_PROJECT="default-project")
    assert isinstance(item, UpdateRequest) and item.project == "default-project"
    [missing] = parse(b'{"Id": "b", "Tags": {"a": "b"}}')
    assert missing.status == "invalid" and ("/ProjectName", "is required (or IMM_PROJECT set on the function)") in [
        (d.path, d.message) for d in missing.error.details
    ]


def test_oversized_message_is_invalid():
    [result] = parse(b" " * 2048 + b"{}", MAX_BODY_BYTES="2048")
    assert result.status == "invalid" and result.error.code == "TooLarge"


def test_update_request_keeps_only_given_change_fields():
    [item] = parse(json.dumps({"ProjectName": "p", "Id": "b", "Tags": {"a": 1}, "DryRun": True}).encode())
    assert item.changes == {"Tags": {"a": 1}} and item.dry_run and not item.resume


def test_validation_never_changes_the_document():
    doc = {"ProjectName": "p", "Id": "b", "Tags": {"a": "b"}}
    before = json.dumps(doc, sort_keys=True)
    assert validate(doc) == []
    assert json.dumps(doc, sort_keys=True) == before  # no defaults (Resume, DryRun) filled in
