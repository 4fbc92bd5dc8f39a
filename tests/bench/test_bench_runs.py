"""The benchmark runs and prints every figure (no timing assertions: benchmarks are not tests)."""

from __future__ import annotations

import os
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
]


def test_quick_bench_prints_every_figure():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "RESULT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for figure in FIGURES:
        [row] = [line for line in lines if line.startswith(figure + "  ")]
        assert ("PASS" in row) or ("FAIL" in row), row
