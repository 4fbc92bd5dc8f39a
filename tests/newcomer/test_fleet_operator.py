"""A fleet operator's local trial (README "Fleet updates", locally): hundreds of batches in a `python3 dev.py
emulator --seed FILE`, `python3 dev.py serve` pointed at it with the environment its banner prints (WORK_QUEUE
included), `python3 dev.py pump` for the queue, and `python3 dev.py revert` over the pump's outcome log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from emulator import Emulator
from tests.tools import ROOT, closed_port, run_tool

QUEUE = "imm-batch-updater-work"


def _env(emu: Emulator, **extra: str) -> dict[str, str]:
    """The shell after `export`ing what the emulator banner prints (plus `extra`)."""
    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "WORK_QUEUE", "FANOUT_")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(drop)},
        "IMM_ENDPOINT": emu.endpoint,
        "IMM_PROTOCOL": "http",
        "IMM_REGION": emu.region,
        "OSS_ENDPOINT": emu.url,
        "WORK_QUEUE_ENDPOINT": emu.url,
        "WORK_QUEUE": QUEUE,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.access_key_secret,
        **extra,
    }


def test_serve_on_a_separate_emulators_work_queue_says_to_run_the_pump():
    """Before: serve printed nothing about WORK_QUEUE when it did not start the emulator itself, so a selector
    answered 202 `queued` and nothing ever applied it, with no word on `python3 dev.py pump`."""
    with Emulator(seed={"mns": {"queues": [QUEUE]}}) as emu:
        port, url = closed_port(), emu.url
        proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.serve", "--port", str(port)],
            cwd=ROOT,
            env=_env(emu),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:  # /healthz answers once the banner and the work-queue line are out
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                        assert answer.status == 200
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                    time.sleep(0.2)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=20)
    lines = [line for line in out.splitlines() if line.startswith(f"work queue {QUEUE}")]
    assert len(lines) == 1, out
    assert "python3 dev.py pump" in lines[0] and url in lines[0], lines[0]


def test_serve_on_a_remote_work_queue_does_not_offer_the_local_pump():
    """A queue in a real account is delivered by the deployed function's own trigger: a local pump would take its
    messages, so serve says who delivers it instead of suggesting one."""
    from devtools.serve import work_queue_note

    note = work_queue_note(QUEUE, "https://123.mns.cn-hangzhou.aliyuncs.com")
    assert QUEUE in note and "dev.py pump" not in note and "trigger" in note


def test_revert_of_a_fleet_change_says_each_note_once_with_a_count(tmp_path):
    """Before: reverting the log lines of a 180-batch `Resume` selector printed the same note 180 times on stderr,
    one per batch, so the line that mattered (the documents written, or an error) scrolled away."""
    actions = {"from": [{"Name": "doc/convert", "Parameters": ["pages=3"]}], "to": []}
    results = _resumed_fleet_lines(tmp_path, 180, {"Actions": actions})
    proc = run_tool("devtools.revert", str(results), "--out-dir", str(tmp_path / "undo"), env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1, proc.stderr[-2000:]
    assert "fleet/batch-0000" in notes[0] and "177 more" in notes[0] and "was resumed" in notes[0]
    assert "180 document(s) in 2 file(s)" in proc.stderr


def test_invoke_says_what_the_result_topic_sink_published():
    """Before: `RESULT_MNS_TOPIC=… python3 dev.py invoke` published to a topic in its in-process emulator and said
    nothing about it, so trying the result sink locally showed no sign that it ran."""
    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "WORK_QUEUE", "FANOUT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    proc = run_tool("devtools.invoke", "examples/direct-bulk.json", env={**env, "RESULT_MNS_TOPIC": "my-results"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    notes = [line for line in proc.stderr.splitlines() if "my-results" in line]
    assert len(notes) == 1, proc.stderr[-2000:]
    assert "3 message(s)" in notes[0] and "updated x2" in notes[0] and "conflict x1" in notes[0], notes[0]


def test_revert_keeps_one_line_per_batch_for_notes_that_ask_for_work_by_hand(tmp_path):
    """Grouping shortened every shared note, so "had no Tags before; UpdateBatch cannot remove it" for 30 batches
    named three of them: the operator lost the list of batches to fix by hand. Only the resumed note is grouped."""
    diff = {"Tags": {"from": None, "to": {"a": "1"}}, "Actions": {"from": [{"Name": "doc/convert"}], "to": []}}
    results = _resumed_fleet_lines(tmp_path, 30, diff)
    proc = run_tool("devtools.revert", str(results), env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    by_hand = [n for n in notes if "had no Tags before" in n]
    assert sorted(n.split(": ")[1] for n in by_hand) == [f"fleet/batch-{i:04d}" for i in range(30)]
    assert len([n for n in notes if "was resumed" in n]) == 1  # the informational one, grouped


def _resumed_fleet_lines(tmp_path, n: int, diff: dict) -> Path:
    """A file of `n` outcome log lines of a fleet change that updated (with `diff`) and resumed each batch."""
    lines = [
        json.dumps(
            {
                "msg": "outcome",
                "project": "fleet",
                "batch_id": f"batch-{i:04d}",
                "status": "updated",
                "resumed": True,
                "diff": diff,
            }
        )  # fmt: skip
        for i in range(n)
    ]
    results = tmp_path / "pump.out"
    results.write_text("\n".join(lines) + "\n")
    return results
