"""Every example event runs through `python -m devtools.invoke` (the local `s local invoke`) with the expected
outcome, against the emulator the command starts itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.invoke import RESULT_MARKER, STATE_MARKER

ROOT = Path(__file__).resolve().parents[2]
UPLOAD = "examples/oss-update-object.json"
EXPECTED = {
    "direct.json": ["updated"],
    "direct-bulk.json": ["updated", "updated", "conflict"],
    "mns-topic-json.json": ["updated"],
    "mns-topic-stream-attrs.json": ["updated"],
    "mns-queue-eventbridge.json": ["updated", "updated"],
    "oss-put.json": ["updated", "updated"],  # with --upload-object examples/oss-update-object.json
    "oss-eventbridge.json": ["updated", "updated"],  # likewise
    "oss-update-object.json": ["updated", "updated"],  # the uploaded object is itself a direct (bulk) event
    "timer.json": ["updated"],
    "async-destination.json": ["invalid"],
    "schedule-nightly.json": ["dry_run"],  # a fleet document: every Failed batch, as a plan
    # with --upload-object examples/schedule-nightly.json: the timer applies its config object
    "timer-config-object.json": ["dry_run"],
}
UPLOADS = {
    "oss-put.json": UPLOAD,
    "oss-eventbridge.json": UPLOAD,
    "timer-config-object.json": "examples/schedule-nightly.json",
}


def local_invoke(*args: str) -> tuple[int, dict, dict, str]:
    """(exit code, result, {batch id: state}, stderr) of one devtools.invoke run in a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.invoke", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    out = proc.stdout
    assert RESULT_MARKER in out and STATE_MARKER in out, (out[-2000:], proc.stderr[-2000:])
    result_text, state_text = out.split(RESULT_MARKER + "\n", 1)[1].split(STATE_MARKER + "\n", 1)
    states = {}
    for line in state_text.splitlines():
        batch_id, _, state = line.strip().partition(": ")
        states[batch_id] = json.loads(state)
    return proc.returncode, json.loads(result_text), states, proc.stderr


def test_every_example_is_covered():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_through_local_invoke(name):
    args = [f"examples/{name}"] + (["--upload-object", UPLOADS[name]] if name in UPLOADS else [])
    code, result, states, stderr = local_invoke(*args)
    assert code == 0, stderr[-2000:]
    assert [r["status"] for r in result["results"]] == EXPECTED[name]
    assert set(states) == {"batch-demo-ready", "batch-demo-running", "batch-demo-failed"}
    if "updated" in EXPECTED[name]:  # every updating example sets batch-demo-ready's action to pages=5
        assert states["batch-demo-ready"]["Actions"] == [{"Name": "doc/convert", "Parameters": ["pages=5"]}]
    else:
        assert states["batch-demo-ready"]["Tags"] == {"env": "demo", "team": "media"}  # nothing changed


def test_not_final_outcome_exits_1_with_the_delivery_incomplete_message():
    code, result, states, _ = local_invoke(
        "examples/timer.json", "--fault", "UpdateBatch:unavailable:*", "--context-timeout", "5"
    )
    assert code == 1 and result["raised"] == "DeliveryIncomplete" and "not final" in result["message"]
    assert states["batch-demo-ready"]["Tags"] == {"env": "demo", "team": "media"}


@pytest.mark.parametrize("name", ["oss-put.json", "oss-eventbridge.json"])
def test_oss_example_without_the_object_hints_at_upload_object(name):
    code, result, _, stderr = local_invoke(f"examples/{name}")
    assert code == 0 and result["results"][0]["error"]["code"] == "NoSuchKey"
    assert "--upload-object" in stderr
