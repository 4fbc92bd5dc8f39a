"""Attack (h4): scheduled reconfiguration (timer, config objects) and the developer tools users run on their
results (`dev.py revert`, `dev.py pump`, `dev.py invoke`), fed what they meet in practice."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from devtools.revert import results_in, revert_documents
from tests.conftest import ROOT

FLEET = "fleet-project"


def _revert_cli(tmp_path, data: bytes) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    return subprocess.run(
        [sys.executable, "-m", "devtools.revert", str(path)], cwd=ROOT, capture_output=True, text=True
    )


def test_revert_reads_outcome_lines_whose_values_hold_unicode_line_separators(invoke, emu, capsys):
    """Log lines are JSON lines: one object per "\\n". The outcome line writes non-ASCII as it is, so a value
    holding U+2028, U+2029 or U+0085 (which `str.splitlines` also splits at) is inside one line: its result must
    not be dropped (silently: the other batch's document came out alone, exit 0). A value the schema refuses
    (U+0085 is a C1 control) is named in a note, not lost without a word."""
    odd = {"v": "a\u2028b\u2029c"}
    [strange] = emu.imm.create_batches(FLEET, 1, state="Ready", tags=odd)
    [control] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"v": "a\x85b"})
    [plain] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"v": "0"})
    capsys.readouterr()
    for batch_id in (strange, control, plain):
        invoke.direct({"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "1"}})
    lines = capsys.readouterr().out
    documents, notes = revert_documents(results_in(lines))
    assert {d["Id"]: d["Tags"] for d in documents} == {strange: odd, plain: {"v": "0"}}
    assert [n for n in notes if control in n], notes
    invoke.direct(documents)
    assert emu.imm.get_batch(FLEET, strange)["Tags"] == odd


def test_revert_reads_log_lines_saved_with_a_byte_order_mark(tmp_path):
    """Editors and exports on Windows save UTF-8 with a BOM: the first line was skipped as "not JSON" and its
    batch silently left out."""
    lines = [
        {
            "msg": "outcome",
            "status": "updated",
            "project": "p",
            "batch_id": f"b{i}",
            "diff": {"Tags": {"from": {"n": str(i)}, "to": {}}},
        }
        for i in range(2)
    ]
    data = b"\xef\xbb\xbf" + b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    proc = _revert_cli(tmp_path, data)
    assert proc.returncode == 0, proc.stderr
    assert [d["Id"] for d in json.loads(proc.stdout)] == ["b0", "b1"]
    whole = b"\xef\xbb\xbf" + json.dumps({"results": lines}, indent=2).encode()
    proc = _revert_cli(tmp_path, whole)
    assert proc.returncode == 0, proc.stderr
    assert [d["Id"] for d in json.loads(proc.stdout)] == ["b0", "b1"]
    piped = subprocess.run(
        [sys.executable, "-m", "devtools.revert", "-"], cwd=ROOT, input=data, capture_output=True, check=True
    )
    assert [d["Id"] for d in json.loads(piped.stdout)] == ["b0", "b1"]


def test_revert_of_log_lines_exported_newest_first_restores_the_value_before_the_first_change(invoke, emu, capsys):
    """SLS shows and exports logs newest first, and a fan-out's lines come from many instances: the input order of
    log lines is not the order of the changes. Each line's `ts` is: with two changes to one batch (v 0 -> 1 -> 2)
    read newest first, the revert set v back to 1, not to the 0 it held before."""
    [batch_id] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"v": "0"})
    capsys.readouterr()
    for step in ("1", "2"):
        invoke.direct({"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": step}})
        time.sleep(0.002)  # `ts` counts milliseconds
    lines = [line for line in capsys.readouterr().out.split("\n") if line]
    newest_first = "\n".join(reversed(lines)) + "\n"
    documents, _ = revert_documents(results_in(newest_first))
    assert documents == [{"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "0"}}]


def test_revert_refuses_a_per_file_count_below_one(tmp_path):
    """`--per-file 0` ended in a traceback (range() with step 0), and a negative count wrote no file at all while
    saying "N document(s) in 0 file(s) revert the change", exit 0: the whole revert silently dropped."""
    results = [
        {"status": "updated", "project": "p", "batch_id": f"b{i}", "diff": {"Tags": {"from": {"n": "1"}, "to": {}}}}
        for i in range(3)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": results}))
    for count in ("0", "-1"):
        out = tmp_path / f"undo{count}"
        proc = subprocess.run(
            [sys.executable, "-m", "devtools.revert", str(path), "--per-file", count, "--out-dir", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (count, proc.stderr)
        assert "--per-file" in proc.stderr


def test_revert_never_leaves_an_earlier_runs_files_among_its_own(tmp_path):
    """`--out-dir undo` after an earlier, larger revert into the same directory rewrote revert-001.json only and left
    revert-002.json of the other change there: sending "the files in undo/" then applied another change's values.
    Files of an earlier run are refused (exit 2, nothing written), never mixed in."""

    def results_file(name: str, n: int, value: str):
        results = [
            {"status": "updated", "project": "p", "batch_id": f"{name}{i}", "diff": {"Tags": {"from": {"v": value}}}}
            for i in range(n)
        ]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"results": results}))
        return path

    out = tmp_path / "undo"
    for path in (results_file("big", 150, "old"), results_file("small", 3, "new")):
        proc = subprocess.run(
            [sys.executable, "-m", "devtools.revert", str(path), "--out-dir", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 2 and "revert-001.json" in proc.stderr, proc.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["revert-001.json", "revert-002.json"]
    assert all(d["Id"].startswith("big") for p in out.iterdir() for d in json.loads(p.read_text()))


def test_revert_files_are_each_one_message_in_bytes_too(tmp_path, monkeypatch):
    """Each revert file is "one message to send", but files were cut by count only: 100 documents restoring 50
    long tags each make a 2 MB file, which the function refuses whole as `invalid` `TooLarge` (MAX_BODY_BYTES,
    1 MiB by default). Files stay within MAX_BODY_BYTES as well; standard output too, or it says to use --out-dir."""
    from imm_batch_updater.config import Settings

    limit = Settings().max_body_bytes
    tags = {f"{i:03d}" + "k" * 120: "v" * 256 for i in range(50)}
    results = [
        {"status": "updated", "project": "p", "batch_id": f"b{i:03d}", "diff": {"Tags": {"from": tags, "to": {}}}}
        for i in range(120)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": results}))
    out = tmp_path / "undo"
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.revert", str(path), "--out-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.iterdir())
    assert all(f.stat().st_size <= limit for f in files), [f.stat().st_size for f in files]
    ids = [d["Id"] for f in files for d in json.loads(f.read_text())]
    assert ids == [f"b{i:03d}" for i in range(120)]
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"results": results[:60]}))
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.revert", str(small)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--out-dir" in proc.stderr and proc.stdout == "", proc.stderr


def test_revert_says_when_an_outcome_line_cannot_be_read(tmp_path):
    """A log line cut short (a line-length limit on the way to SLS, a copy that lost its end) was skipped like a
    banner: the other batches' documents came out, exit 0, and nothing said one change was left out."""
    lines = [
        {"ts": f"2026-01-01T00:00:0{i}.000Z", "level": "INFO", "msg": "outcome", "status": "updated", "project": "p"}
        | {"batch_id": f"b{i}", "diff": {"Tags": {"from": {"n": str(i)}, "to": {}}}}
        for i in range(3)
    ]
    text = [json.dumps(line) for line in lines]
    text[1] = text[1][:100]  # cut short
    data = ("pump: banner that is not JSON\n" + "\n".join(text) + "\n").encode()
    proc = _revert_cli(tmp_path, data)
    assert [d["Id"] for d in json.loads(proc.stdout)] == ["b0", "b2"]
    assert "1 line" in proc.stderr and "outcome" in proc.stderr, proc.stderr
    assert "banner" not in proc.stderr
