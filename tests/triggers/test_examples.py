"""Every example event runs through devtools.invoke (the local `s local invoke`) with the expected outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "direct.json": ["updated"],
    "direct-bulk.json": ["updated", "updated", "conflict"],
    "mns-topic-json.json": ["updated"],
    "mns-topic-stream-attrs.json": ["updated"],
    "mns-queue-eventbridge.json": ["updated", "updated"],
    "oss-put.json": ["updated", "updated"],
    "oss-update-object.json": ["updated", "updated"],
    "timer.json": ["updated"],
    "async-destination.json": ["invalid"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_through_local_invoke(name):
    args = [sys.executable, "-m", "devtools.invoke", f"examples/{name}"]
    if name == "oss-put.json":
        args += ["--upload-object", "examples/oss-update-object.json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_"))}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # stdout: JSON log lines (one per line) and then the indented result document.
    result = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert [r["status"] for r in result["results"]] == EXPECTED[name]
    assert "emulator batches" in proc.stderr
