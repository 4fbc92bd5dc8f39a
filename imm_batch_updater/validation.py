"""Validate update documents against the request schema (JSON Schema draft 2020-12), with one validity decision.

The schema ships inside the package (`schema/update-request.schema.json`, read with `importlib.resources`; the
repository's top-level `schema/` holds the same file for other tools). It is compiled once per instance:

- **The decision** is fastjsonschema's (the schema compiled to Python code, ~20x faster than jsonschema on valid
  documents). A document is valid if and only if it says so.
- **The description** of an invalid document comes from jsonschema (2020-12), which names every problem with its
  JSON Pointer and rule, never the value (a document may carry something secret in the wrong field). Should it
  find nothing, the document is still invalid: one problem at "" says so.

Both compile the same patterns, translated once from ECMA-262 (what JSON Schema means) to Python `re`
(`ecma_pattern`): `$` matches only at the very end (Python's also matches before a final newline, so
`"media-in\\n"` would pass `^[a-z0-9-]+$`), `\\d`/`\\w`/`\\b` are ASCII-only and `\\s` and `.` use ECMA's sets.
tests/reliability/test_properties.py checks that the two validators agree on generated strings with control
characters, newlines, surrogates and non-ASCII letters.

    >>> [(p.path, p.message) for p in validate({"ProjectName": "p", "Id": "b", "Tags": {"k": "v"}, "Resum": True})]
    [('/Resum', 'unknown field (not allowed here)')]
    >>> [p.path for p in validate({"ProjectName": "p", "Id": "b\\n", "Tags": {"k": "v"}})]
    ['/Id']
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from imm_batch_updater.outcome import Detail
from imm_batch_updater.strictjson import pointer

SCHEMA_FILE = "update-request.schema.json"
MAX_DETAILS = 20  # problems listed per document; a document with more gets the first ones and a last line saying so


@lru_cache(maxsize=1)
def schema_text() -> str:
    return (resources.files("imm_batch_updater") / "schema" / SCHEMA_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published schema (what `GET /schema` answers)."""
    result: dict[str, Any] = json.loads(schema_text())
    return result


# -- ECMA-262 patterns in Python's re ----------------------------------------------------------------------------
class UnsupportedPattern(ValueError):
    """A schema pattern uses a construct `ecma_pattern` does not translate (the schema is refused at load)."""


# ECMA-262 WhiteSpace and LineTerminator (what `\s` matches there).
_ECMA_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": _ECMA_SPACE}
_PLAIN_ESCAPES = set("bBnrtfv0") | set("^$\\.*+?()[]{}|/-")


def ecma_pattern(pattern: str) -> str:
    """`pattern` (ECMA-262, no flags) as a Python `re` pattern that matches exactly the same strings with
    `re.search`. Raises UnsupportedPattern for constructs whose meaning differs and that this schema has no use
    for (`\\u{...}`, `\\p{...}`, `\\c`, empty classes).

    >>> ecma_pattern("^[a-z0-9-]+$")
    '(?a)^[a-z0-9-]+\\\\Z'
    """
    out: list[str] = ["(?a)"]  # \b, \B (and \d, \w, were any left) are ASCII in ECMA-262
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise UnsupportedPattern("a pattern ends with a backslash")
            e = pattern[i + 1]
            i += 2
            if e in _CLASS_ESCAPES:
                out.append(_CLASS_ESCAPES[e] if in_class else f"[{_CLASS_ESCAPES[e]}]")
            elif e.lower() in _CLASS_ESCAPES and not in_class:
                out.append(f"[^{_CLASS_ESCAPES[e.lower()]}]")
            elif e == "u" and pattern[i : i + 1] != "{" and len(pattern) >= i + 4:
                out.append("\\u" + pattern[i : i + 4])
                i += 4
            elif e == "x" and len(pattern) >= i + 2:
                out.append("\\x" + pattern[i : i + 2])
                i += 2
            elif e in _PLAIN_ESCAPES or e.isdigit():
                out.append("\\" + e)
            else:
                raise UnsupportedPattern(f"the escape \\{e} is not translated")
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append("\\$" if c == "$" else c)  # escaped: fastjsonschema rewrites every bare $ it sees
        elif c == "[":
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":
                raise UnsupportedPattern("empty character classes mean something else in ECMA-262")
            in_class = True
            out.append(c)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
        elif c == "$":
            out.append("\\Z")  # ECMA: the end of the input, never before a final newline
        elif c == ".":
            out.append("[^\\n\\r\\u2028\\u2029]")
        elif c == "(" and pattern[i + 1 : i + 3] == "?<" and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")  # a named group
            i += 2
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _translated(node: Any) -> Any:
    """A copy of a schema with every `pattern` translated (patternProperties keys too)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                out[key] = ecma_pattern(value)
            elif key == "patternProperties" and isinstance(value, dict):
                out[key] = {ecma_pattern(k): _translated(v) for k, v in value.items()}
            else:
                out[key] = _translated(value)
        return out
    if isinstance(node, list):
        return [_translated(v) for v in node]
    return node


@lru_cache(maxsize=1)
def python_schema() -> dict[str, Any]:
    """The schema both validators compile: the published one with its patterns in Python's dialect."""
    result: dict[str, Any] = _translated(copy.deepcopy(schema()))
    return result


# -- the decision --------------------------------------------------------------------------------------------------
def _one_name_branches(node: Any) -> frozenset[str] | None:
    """The names of an `anyOf`/`oneOf` whose every branch is a one-name `required` (else None)."""
    if not (isinstance(node, list) and node):
        return None
    if not all(isinstance(b, dict) and list(b) == ["required"] and len(b["required"]) == 1 for b in node):
        return None
    return frozenset(b["required"][0] for b in node)


@lru_cache(maxsize=1)
def fast_check() -> Any:
    """The schema compiled to Python code by fastjsonschema (drafts 4-7: compiled from a draft-07 copy, in which
    2020-12's `dependentRequired` is spelled `dependencies`; every other keyword used means the same in both).

    fastjsonschema runs `anyOf` and `oneOf` by raising and catching an exception for every branch that fails, which
    makes the top level's "at least one of Input, Actions, Tags" and "exactly one of Id, Selector" several times
    slower than the rest of the schema together. When every branch is a one-name `required`, they are checked here
    instead, before the compiled rest, exactly as the compiled keywords would: the same answer.
    """
    import fastjsonschema

    draft7 = {**python_schema(), "$schema": "http://json-schema.org/draft-07/schema#"}
    if "dependentRequired" in draft7:
        draft7["dependencies"] = draft7.pop("dependentRequired")
    at_least_one = _one_name_branches(draft7.get("anyOf")) if draft7.get("type") == "object" else None
    exactly_one = _one_name_branches(draft7.get("oneOf")) if draft7.get("type") == "object" else None
    if at_least_one is not None:
        del draft7["anyOf"]
    if exactly_one is not None:
        del draft7["oneOf"]
    # Without detailed exceptions: only the decision is read from it (jsonschema describes), and the compiled code
    # is a third of the size (each refusal would otherwise build a copy of its part of the schema), which keeps the
    # path a valid document takes short.
    check = fastjsonschema.compile(draft7, use_default=False, detailed_exceptions=False)
    if at_least_one is None and exactly_one is None:
        return check
    refused = fastjsonschema.JsonSchemaValueException("data cannot be validated by the schema", rule="anyOf/oneOf")

    def fast_check(data: Any) -> Any:
        if isinstance(data, dict):
            if at_least_one is not None and at_least_one.isdisjoint(data):
                raise refused
            if exactly_one is not None and len(exactly_one.intersection(data)) != 1:
                raise refused
        return check(data)

    return fast_check


@lru_cache(maxsize=1)
def _fast_error() -> type[Exception]:
    import fastjsonschema

    error: type[Exception] = fastjsonschema.JsonSchemaException
    return error


# -- the description ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _describer() -> Any:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(python_schema())


def _describe(error: Any) -> list[tuple[list[Any], str]]:
    """(path parts, message) pairs for one jsonschema error, without echoing the instance value."""
    path = list(error.absolute_path)
    kw, rule = error.validator, error.validator_value
    if "propertyNames" in error.schema_path:
        # The error path is the object, not the key: the key is not echoed (it may be anything).
        return [(path, "every key must be 1 to 128 characters long, without control characters")]
    if kw == "required" and isinstance(error.instance, dict):
        # Point at each missing member itself: "/ProjectName" says more than "".
        return [(path + [name], "is required") for name in rule if name not in error.instance]
    if kw == "additionalProperties" and isinstance(error.instance, dict) and rule is False:
        allowed = set(error.schema.get("properties", {}))
        return [(path + [k], "unknown field (not allowed here)") for k in error.instance if k not in allowed]
    if kw in ("anyOf", "oneOf") and not isinstance(error.instance, dict):
        return []  # `required` branches say nothing about what is not an object: its type error says it all
    if kw in ("anyOf", "oneOf") and not path and all(isinstance(s, dict) and "required" in s for s in rule):
        names = [s["required"][0] for s in rule]
        if kw == "oneOf":
            given = [n for n in names if isinstance(error.instance, dict) and n in error.instance]
            if len(given) > 1:
                return [([name], f"exactly one of {', '.join(names)}: not both") for name in given[1:]]
            return [(path + [names[0]], f"is required (or {', '.join(names[1:])} instead)")]
        return [(path, f"at least one of {', '.join(names)} is required")]
    if kw == "dependentRequired" and isinstance(error.instance, dict):
        return [
            ([name], f"is allowed only with {', '.join(needed)}")
            for name, needed in rule.items()
            if name in error.instance and any(n not in error.instance for n in needed)
        ]
    if kw == "type":
        types = rule if isinstance(rule, list) else [rule]
        return [(path, "must be of type " + " or ".join(types))]
    pattern = error.schema.get("pattern") if kw == "pattern" else None
    published = _published_pattern(error) if pattern else None
    messages = {
        "minLength": f"must be at least {rule} characters long",
        "maxLength": f"must be at most {rule} characters long",
        "pattern": f"must match the pattern {published}",
        "minItems": f"must have at least {rule} item(s)",
        "maxItems": f"must have at most {rule} items",
        "maxProperties": f"must have at most {rule} entries",
        "minProperties": f"must have at least {rule} entries",
        "minimum": f"must be at least {rule}",
        "maximum": f"must be at most {rule}",
        "enum": "must be one of the allowed values",
        "const": f"must be {json.dumps(rule)}",
    }
    return [(path, messages.get(kw, f"fails the schema rule '{kw}'"))]


def _published_pattern(error: Any) -> str:
    """The pattern as the published schema writes it (the error carries the translated one)."""
    node: Any = schema()
    for part in error.schema_path:
        if part == "pattern":
            break
        node = node[part] if isinstance(node, (dict, list)) else None
    return str(node.get("pattern")) if isinstance(node, dict) else "of this field"


def validate(document: Any) -> list[Detail]:
    """All problems with `document` (empty when it is valid), sorted by path."""
    try:
        fast_check()(document)
        return []
    except _fast_error():  # evaluated only when something was raised: valid documents skip even that lookup
        pass  # invalid: let jsonschema name every problem
    problems: dict[tuple[str, str], Detail] = {}
    more = False
    for error in _describer().iter_errors(document):
        for parts, message in _describe(error):
            problem = Detail(pointer(parts), message)
            problems.setdefault((problem.path, problem.message), problem)
        if len(problems) >= MAX_DETAILS:  # enough to fix the document; an answer must not grow with the input
            more = True
            break
    if not problems:  # the decision stands; say so rather than pass an invalid document
        return [Detail("", "fails the schema")]
    found = sorted(problems.values(), key=lambda p: (p.path, p.message))
    if more:
        found = found[: MAX_DETAILS - 1] + [Detail("", "more problems, not listed: fix these and validate again")]
    return found
