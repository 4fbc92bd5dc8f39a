"""`python -m bench --quick` runs and prints every figure. Benchmarks are not tests: no timing assertions here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [
    "warm overhead",
    "warm overhead (precheck on)",
    "warm overhead, 20 ms IMM",
    "cold start",
    "throughput",
    "memory",
    "validation",
    "fleet (50 batches, IMM_MAX_QPS=50)",
]


def test_quick_bench_prints_every_figure():
    # The bench sets the function's variables itself; none of the caller's may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "RESULT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Table rows: figure, ratio, target, PASS/FAIL, measured -- columns separated by two or more spaces.
    rows = [re.split(r" {2,}", line) for line in proc.stdout.splitlines()]
    by_figure = {row[0]: row for row in rows if len(row) >= 5 and row[3] in ("PASS", "FAIL")}
    for figure in FIGURES:
        matching = [name for name in by_figure if name == figure or name.startswith(figure + " (direct bulk")]
        assert matching, f"{figure!r} missing from:\n{proc.stdout}"
        ratio = by_figure[matching[0]][1]
        assert re.match(r"^\d+(\.\d+)?( MB|x)?$", ratio), ratio
    assert "machine:" in proc.stdout


def test_segments_tool_prints_every_segment_and_compares_a_patch(tmp_path):
    """`python -m bench.segments` (bench/README.md): every marked step still exists under its name (a rename in
    the package would silently drop a segment), and `--patch` runs B alongside A."""
    (tmp_path / "segments_patch.py").write_text(
        "def slower():\n"
        "    import imm_batch_updater.apply as apply\n"
        "    inner = apply._outcome\n"
        "    def outcome(*args, **kwargs):\n"
        "        sum(range(20000))\n"
        "        return inner(*args, **kwargs)\n"
        "    apply._outcome = outcome\n"
        "    return lambda: setattr(apply, '_outcome', inner)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "RESULT_"))}
    env["PYTHONPATH"] = str(tmp_path)
    command = [sys.executable, "-m", "bench.segments", "40", "--precheck", "--patch", "segments_patch:slower"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line[:40].strip(): line[40:].split() for line in proc.stdout.splitlines()[1:]}
    from bench.segments import MARKS

    for _, _, label, _ in MARKS:
        assert label in rows, f"{label!r} missing from:\n{proc.stdout}"
    assert "answer" in rows and "total without the SDK calls" in rows
    a, b, delta = (float(x) for x in rows["outcome"])
    assert delta > 50, proc.stdout  # the patch's ~0.3 ms of extra work shows in its own segment, in B only


def test_essential_tool_prints_the_three_timings_and_the_pipeline_share():
    """`python -m bench.essential` (bench/README.md) runs the handler and the flat essential steps against the
    emulator (each must answer `updated`, or the tool fails) and prints one row for each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "RESULT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.essential", "40"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line[:24].strip(): line[24:].split() for line in proc.stdout.splitlines()[1:]}
    assert set(rows) == {"bare SDK call", "handler", "essential", "the pipeline around it"}, proc.stdout
    assert float(rows["bare SDK call"][1]) == 1.0
    handler_us, essential_us, pipeline_us = (
        float(rows[k][0]) for k in ("handler", "essential", "the pipeline around it")
    )
    assert abs(handler_us - essential_us - pipeline_us) < 0.2, proc.stdout


def test_the_bench_runs_by_its_path_from_another_folder(tmp_path):
    """bench/__main__.py puts the repository on sys.path itself: its imports of the repository's modules come
    after that (deploy.build was imported before it, and `python bench/__main__.py` stopped on ModuleNotFoundError)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "__main__.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--quick" in proc.stdout
