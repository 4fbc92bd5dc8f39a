"""Validate update documents against `schema/update-request.schema.json` (JSON Schema draft 2020-12).

The validator is compiled once per instance. Errors name the JSON Pointer of the offending field and the rule it
broke, never the value (a document may carry something secret in the wrong field):

    >>> problems = validate({"ProjectName": "p", "Id": "b", "Tags": {"k": "v"}, "Resum": True})
    >>> [(p.path, p.message) for p in problems]
    [('/Resum', 'unknown field (not allowed here)')]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "update-request.schema.json"


@dataclass(frozen=True)
class Problem:
    path: str  # JSON Pointer, "" for the whole document
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@lru_cache(maxsize=1)
def schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(schema_text())


@lru_cache(maxsize=1)
def _fast_check() -> Any:
    """The schema compiled to Python code by fastjsonschema: ~20x faster than jsonschema on valid documents.

    fastjsonschema implements drafts 4-7; every keyword this schema uses means the same in draft-07 and 2020-12,
    so it compiles a draft-07 copy. It only answers "valid?": the error report always comes from jsonschema
    (2020-12), which names every problem with its path. tests/reliability/test_properties.py checks that the two
    agree on generated and mutated documents.
    """
    import fastjsonschema

    draft7 = {**schema(), "$schema": "http://json-schema.org/draft-07/schema#"}
    # fastjsonschema runs an `anyOf` by raising and catching an exception for every branch that fails, which
    # makes a top-level "at least one of these fields" three times slower to check than the rest of the schema.
    # When every branch of that anyOf is a plain `required` list, it is checked here instead: same answer.
    any_of = draft7.get("anyOf")
    if not (
        draft7.get("type") == "object"
        and isinstance(any_of, list)
        and any_of
        and all(isinstance(b, dict) and list(b) == ["required"] and isinstance(b["required"], list) for b in any_of)
    ):
        return fastjsonschema.compile(draft7, use_default=False)
    check = fastjsonschema.compile({k: v for k, v in draft7.items() if k != "anyOf"}, use_default=False)
    groups = tuple(tuple(b["required"]) for b in any_of)
    names = frozenset(g[0] for g in groups) if all(len(g) == 1 for g in groups) else None

    def none_given(data: dict[str, Any]) -> bool:
        if names is not None:  # "at least one of these fields" (this schema)
            return names.isdisjoint(data)
        return not any(all(name in data for name in group) for group in groups)

    def fast_check(data: Any) -> Any:
        # The anyOf first, as the full compiled schema would check it.
        if isinstance(data, dict) and none_given(data):
            raise fastjsonschema.JsonSchemaValueException(
                "data cannot be validated by any definition", name="data", rule="anyOf"
            )
        return check(data)

    return fast_check


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def pointer(parts: Any) -> str:
    """RFC 6901 JSON Pointer for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _describe(error: Any) -> list[tuple[list[Any], str]]:
    """(path parts, message) pairs for one jsonschema error, without echoing the instance value."""
    path = list(error.absolute_path)
    kw, rule = error.validator, error.validator_value
    if "propertyNames" in error.schema_path:
        # The error path is the object, not the key: the key is not echoed (it may be anything).
        return [(path, "every key must be 1 to 128 characters long")]
    if kw == "required" and isinstance(error.instance, dict):
        # Point at each missing member itself: "/ProjectName" says more than "".
        return [(path + [name], "is required") for name in rule if name not in error.instance]
    if kw == "additionalProperties" and isinstance(error.instance, dict) and rule is False:
        allowed = set(error.schema.get("properties", {}))
        return [(path + [k], "unknown field (not allowed here)") for k in error.instance if k not in allowed]
    if kw == "anyOf" and not path and all("required" in s for s in rule):
        names = ", ".join(s["required"][0] for s in rule)
        return [(path, f"at least one of {names} is required")]
    if kw == "type":
        types = rule if isinstance(rule, list) else [rule]
        return [(path, "must be of type " + " or ".join(types))]
    messages = {
        "minLength": f"must be at least {rule} characters long",
        "maxLength": f"must be at most {rule} characters long",
        "pattern": f"must match the pattern {rule}",
        "minItems": f"must have at least {rule} item(s)",
        "maxItems": f"must have at most {rule} items",
        "maxProperties": f"must have at most {rule} entries",
        "minProperties": f"must have at least {rule} entries",
        "enum": "must be one of the allowed values",
        "const": f"must be {json.dumps(rule)}",
    }
    return [(path, messages.get(kw, f"fails the schema rule '{kw}'"))]


@lru_cache(maxsize=1)
def _fast_error() -> type[Exception]:
    import fastjsonschema

    return fastjsonschema.JsonSchemaException


def validate(document: Any) -> list[Problem]:
    """All problems with `document` (empty when it is valid), sorted by path."""
    try:
        _fast_check()(document)
        return []
    except _fast_error():  # evaluated only when something was raised: valid documents skip even that lookup
        pass  # invalid: let jsonschema name every problem
    problems: dict[tuple[str, str], Problem] = {}
    for error in _validator().iter_errors(document):
        for parts, message in _describe(error):
            problem = Problem(pointer(parts), message)
            problems.setdefault((problem.path, problem.message), problem)
    return sorted(problems.values(), key=lambda p: (p.path, p.message))
