"""The examples in the package's docstrings are tests too (Powertools style): every `>>>` line runs here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import imm_batch_updater

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(imm_batch_updater.__path__, prefix="imm_batch_updater.") if not m.ispkg
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_the_key_modules_have_examples():
    counted = {name: doctest.testmod(importlib.import_module(name)).attempted for name in MODULES}
    for name in ("strictjson", "validation", "outcome", "retry", "config", "ratelimit", "context", "documents"):
        assert counted[f"imm_batch_updater.{name}"] > 0, name
