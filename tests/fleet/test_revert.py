"""Audit and revert (issue #13, part 4): a fleet change's results (or its log lines) are enough to put every batch
back: `python3 dev.py revert RESULTS` writes the documents that do it."""

from __future__ import annotations

import json
import subprocess
import sys

from devtools.revert import results_in, revert_documents
from tests.conftest import ROOT

FLEET = "fleet-project"


def snapshot(emu):
    return {b["Id"]: {k: b.get(k) for k in ("Input", "Actions", "Tags")} for b in emu.imm.list_batches(FLEET)}


def test_the_results_of_a_fleet_change_revert_it(invoke, emu, tmp_path):
    emu.imm.create_batches(FLEET, 30, state="Ready", tags=lambda i: {"tier": "gold", "n": str(i)})
    before = snapshot(emu)
    change = {
        "ProjectName": FLEET,
        "Selector": {"TagSelector": "tier=gold"},
        "Input": {"OSS": {"Bucket": "other-bucket", "Prefix": "new/"}},
        "Actions": [{"Name": "video/convert", "Parameters": ["fps=30"]}],
        "Tags": {"tier": "gold", "changed": "yes"},
    }
    results = invoke.direct(change)
    assert snapshot(emu) != before
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    out = subprocess.run(
        [sys.executable, "-m", "devtools.revert", str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    documents = json.loads(out.stdout)
    assert len(documents) == 30 and "30 document(s)" in out.stderr
    reverted = invoke.direct(documents)
    assert {r["status"] for r in reverted["results"]} == {"updated"}
    assert snapshot(emu) == before


def test_log_lines_revert_too_and_the_first_from_wins(invoke, emu, capsys):
    [batch_id] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"v": "0"})
    capsys.readouterr()
    for step in ("1", "2"):
        invoke.direct({"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": step}})
    lines = capsys.readouterr().out
    documents, notes = revert_documents(results_in(lines))
    assert documents == [{"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "0"}}] and notes == []


def test_what_cannot_be_reverted_is_said():
    results = [
        {
            "status": "updated",
            "project": "p",
            "batch_id": "b",
            "resumed": True,
            "diff": {"Tags": {"from": None, "to": {}}},
        },
        {"status": "dry_run", "project": "p", "batch_id": "c", "diff": {"Tags": {"from": {"a": 1}, "to": {}}}},
        {"status": "failed", "project": "p", "batch_id": "d"},
    ]
    documents, notes = revert_documents(results, dry_run=True)
    assert documents == []
    assert any("resumed" in n for n in notes) and any("had no Tags" in n for n in notes)


def test_a_change_larger_than_a_message_is_reverted_in_files_of_one_message(tmp_path):
    results = [
        {"status": "updated", "project": "p", "batch_id": f"b{i}", "diff": {"Tags": {"from": {"n": i}, "to": {}}}}
        for i in range(230)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": results}))
    refused = subprocess.run(
        [sys.executable, "-m", "devtools.revert", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--out-dir" in refused.stderr and refused.stdout == ""
    out = subprocess.run(
        [sys.executable, "-m", "devtools.revert", str(path), "--out-dir", str(tmp_path / "undo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    files = sorted((tmp_path / "undo").glob("revert-*.json"))
    chunks = [json.loads(f.read_text()) for f in files]
    assert [len(c) for c in chunks] == [100, 100, 30] and out.stdout.split() == [str(f) for f in files]
    assert [d["Id"] for c in chunks for d in c] == [f"b{i}" for i in range(230)]


def test_a_file_that_is_not_results_is_a_clear_error(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("not json at all")
    for target in (str(path), str(tmp_path / "missing.json")):
        proc = subprocess.run(
            [sys.executable, "-m", "devtools.revert", target], cwd=ROOT, capture_output=True, text=True
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "dev.py revert:" in proc.stderr


def test_values_before_that_the_schema_refuses_are_said_not_written(invoke, emu):
    """IMM may hold what a document may not carry (more than 50 tags, a tag key of 200 characters): a revert
    document for it would come back `invalid`, so none is written and the note names the field."""
    many = {f"t{i}": "x" for i in range(60)}
    [crowded] = emu.imm.create_batches(FLEET, 1, state="Ready", tags=many)
    [long_key] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"k" * 200: "v"})
    [plain] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"a": "1"})
    results = []
    for batch_id in (crowded, long_key, plain):
        results += invoke.direct({"ProjectName": FLEET, "Id": batch_id, "Tags": {"new": "1"}})["results"]
    assert [r["status"] for r in results] == ["updated"] * 3
    documents, notes = revert_documents(results)
    assert documents == [{"ProjectName": FLEET, "Id": plain, "Tags": {"a": "1"}}]
    assert len(notes) == 2, notes
    assert any(crowded in n and "/Tags" in n and "at most 50" in n for n in notes), notes
    assert any(long_key in n and "/Tags" in n for n in notes), notes
    assert invoke.direct(documents)["results"][0]["status"] == "updated"


def test_the_revert_of_a_resumed_batch_is_a_conflict_until_the_batch_fails_again(invoke, emu):
    """What the note on a resumed batch says: IMM updates only Ready and Failed batches (emulator/imm.py
    ALLOWED_STATES, from IMM's API reference), so the revert is a `conflict` while the batch runs or is suspended,
    and puts the values back once it has failed."""
    [batch_id] = emu.imm.create_batches(FLEET, 1, state="Failed", tags={"v": "0"})
    results = invoke.direct({"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "1"}, "Resume": True})
    assert results["results"][0]["resumed"] is True
    documents, notes = revert_documents(results["results"])
    assert documents == [{"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "0"}}]
    [note] = notes
    assert "was resumed" in note and "only Ready and Failed" in note and "`conflict`" in note
    for state in ("Running", "Suspended", "Succeeded"):
        emu.imm.set_state(FLEET, batch_id, state)
        refused = invoke.direct(documents[0])["results"][0]
        assert refused["status"] == "conflict", (state, refused)
    emu.imm.set_state(FLEET, batch_id, "Failed")
    applied = invoke.direct(documents[0])["results"][0]
    assert applied["status"] == "updated", applied
    assert emu.imm.list_batches(FLEET)[0]["Tags"] == {"v": "0"}


def test_revert_reads_standard_input_for_dash(invoke, emu, capsys):
    """`dev.py revert -`: outcome log lines piped in (e.g. from an SLS export) give the same documents."""
    [batch_id] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"v": "0"})
    capsys.readouterr()
    invoke.direct({"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "1"}})
    lines = capsys.readouterr().out
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.revert", "-"], cwd=ROOT, input=lines, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "0"}}]
