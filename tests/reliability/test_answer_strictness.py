"""`imm._not_strict` takes a quick path through orjson before the exact check; the two must never disagree.

A generator builds answer bodies as the SDK hands them over (whatever `json.loads` makes of IMM's text, so NaN,
Infinity, huge integers and lone surrogates too) and compares the function's decision with the exact check alone.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from imm_batch_updater.imm import _not_strict
from tests.conftest import examples


def exact(body):
    try:
        json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        return True
    return False


SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.one_of(st.characters(), SURROGATES), max_size=6),  # lone surrogates
    st.sampled_from(["null", "nullable", "", "State", "\ud83d\ude00"]),  # "null" inside a string takes the exact path
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),  # around orjson's integer limits
    st.integers(min_value=-(2**64), max_value=-(2**63) + 2),
    st.sampled_from([10**30, -(10**30), math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308]),
    st.floats(),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=examples(500), deadline=None)
@given(body=st.dictionaries(TEXT, VALUES, max_size=5))
def test_the_quick_path_decides_as_the_exact_check(body):
    assert _not_strict(body) == exact(body)


def test_known_cases():
    assert not _not_strict({"RequestId": "r", "Batch": {"Id": "b", "State": "Ready", "Tags": {"a": "1"}}})
    assert not _not_strict({"RequestId": "r", "Batch": {"Notification": None}})  # a null: the exact path, strict
    assert _not_strict({"RequestId": "r", "Batch": {"Progress": math.nan}})
    assert _not_strict({"RequestId": "r", "Batch": {"Tags": {"a": "\udc00"}}})
    assert _not_strict({"RequestId": "r", "\ud800": 1})
    assert not _not_strict({"RequestId": "r", "Size": 2**70})  # beyond orjson's integers: the exact path, strict
    deep: list = []
    node = deep
    for _ in range(400):  # deeper than orjson goes: the exact path
        node.append([])
        node = node[0]
    assert not _not_strict({"RequestId": "r", "Deep": deep})
