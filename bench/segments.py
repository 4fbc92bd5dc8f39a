"""Where a warm update's time goes, between real IMM calls: `python -m bench.segments [N] [--precheck]
[--patch MODULE:FUNCTION]`.

`bench.profile_warm` times every step with a wrapper, which adds about 0.5 us per step and reports exclusive
times. This tool instead drops a timestamp at a few points of the handler (a step's end, or the start of the SDK
call) and prints the median time between consecutive points, so a segment is everything the function did since the
previous point, with the caches as cold as they are in the warm-overhead figure (each update runs right after a
bare SDK call, as there). A segment's noise between two runs of this tool is a few microseconds (the machine
drifts); within one run it is a fraction of a microsecond.

`--patch MODULE:FUNCTION` compares two versions of the code in one run: FUNCTION (importable from MODULE, e.g. a
file in /tmp on PYTHONPATH) applies a change and returns a callable that undoes it (or None); it is applied on
every other pair of updates, and the table shows A (as is), B (patched) and B - A per segment. Changes to this
repository's hot path were measured this way (bench/README.md). The patch must keep the marked functions (below)
reachable under their names, or their segments go missing.
"""

from __future__ import annotations

import functools
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.__main__ import (
    BATCH,
    PROJECT,
    ExternalEmulator,
    Key,
    bare_client,
    clean_function_env,
    fc_context,
    function_stdout_discarded,
    point_function_at,
)

# (module, attribute path, label, "in" or "out"): a timestamp when the callable is entered or has returned.
MARKS = [
    ("imm_batch_updater.app", "InvocationContext", "context", "out"),
    ("imm_batch_updater.app", "decode_event", "decode", "out"),
    ("imm_batch_updater.sources", "Sources.detect", "detect", "out"),
    ("imm_batch_updater.sources.direct", "DirectSource.receive", "receive", "out"),
    ("imm_batch_updater.documents", "validate", "validate", "out"),
    ("imm_batch_updater.app", "documents_of", "documents", "out"),
    ("imm_batch_updater.app", "App._imm_client", "imm client", "out"),
    ("alibabacloud_imm20200930.client", "Client.get_batch_with_options", "to GetBatch (--precheck)", "in"),
    ("alibabacloud_imm20200930.client", "Client.get_batch_with_options", "GetBatch call", "out"),
    ("imm_batch_updater.imm", "update_request", "request model", "out"),
    ("imm_batch_updater.retry", "watchdog.watch", "retry + watch", "out"),
    ("alibabacloud_imm20200930.client", "Client.update_batch_with_options", "to the SDK call", "in"),
    ("alibabacloud_imm20200930.client", "Client.update_batch_with_options", "SDK call", "out"),
    ("imm_batch_updater.retry", "watchdog.unwatch", "unwatch", "out"),
    ("imm_batch_updater.apply", "_outcome", "outcome", "out"),
    ("imm_batch_updater.app", "write_log", "log line", "out"),
]
SDK = ("GetBatch call", "SDK call")  # the IMM calls themselves: left out of the total


def _install(marks: list[tuple[str, float]]) -> None:
    clock = time.perf_counter
    for module_name, path, label, when in MARKS:
        owner: Any = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        inner = getattr(owner, attr)
        static = isinstance(owner.__dict__.get(attr) if isinstance(owner, type) else None, staticmethod)

        def marked(*args: Any, _inner: Any = inner, _label: str = label, _when: str = when, **kwargs: Any) -> Any:
            if _when == "in":
                marks.append((_label, clock()))
            result = _inner(*args, **kwargs)
            if _when == "out":
                marks.append((_label, clock()))
            return result

        functools.update_wrapper(marked, inner)
        setattr(owner, attr, staticmethod(marked) if static else marked)


def run(n: int, precheck: bool, patch: Callable[[], Callable[[], None] | None] | None) -> dict[str, dict[str, float]]:
    """Median microseconds per segment, for "A" (and "B" when `patch` is given)."""
    from alibabacloud_imm20200930 import models
    from darabonba.runtime import RuntimeOptions

    import handler

    clean_function_env()
    key = Key.new()
    marks: list[tuple[str, float]] = []
    _install(marks)
    per: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    clock = time.perf_counter
    with ExternalEmulator(key) as ext:
        point_function_at(ext.endpoint, precheck)
        client = bare_client(ext.endpoint, key)
        runtime = RuntimeOptions(read_timeout=10000, connect_timeout=3000)
        with function_stdout_discarded():
            for i in range(n + 50):
                side = "B" if patch is not None and (i // 2) % 2 else "A"
                undo = patch() if side == "B" and patch is not None else None
                event = json.dumps({"ProjectName": PROJECT, "Id": BATCH, "Tags": {"s": f"f{i}"}}).encode()
                context = fc_context(key)
                if precheck:
                    client.get_batch_with_options(models.GetBatchRequest(project_name=PROJECT, id=BATCH), runtime)
                request = models.UpdateBatchRequest(project_name=PROJECT, id=BATCH, tags={"s": f"b{i}"})
                client.update_batch_with_options(request, runtime)  # as in the figure: a bare call just before
                marks.clear()
                t0 = clock()
                handler.handler(event, context)
                t1 = clock()
                if undo is not None:
                    undo()
                if i < 50:
                    continue
                previous = t0
                sdk = 0.0
                seen: dict[str, int] = {}
                for label, t in [*marks, ("answer", t1)]:
                    seen[label] = seen.get(label, 0) + 1
                    if seen[label] > 1:  # a step that runs twice (the retry helper around GetBatch and UpdateBatch)
                        label = f"{label} ({seen[label]})"
                    if label in SDK:
                        sdk += t - previous
                    per[side].setdefault(label, []).append(t - previous)
                    previous = t
                per[side].setdefault("total without the SDK calls", []).append(t1 - t0 - sdk)
    return {side: {k: statistics.median(v) * 1e6 for k, v in d.items()} for side, d in per.items() if d}


def main(argv: list[str]) -> int:
    n = int(next((a for a in argv if a.isdigit()), "2000"))
    patch = None
    if "--patch" in argv:
        module_name, _, function = argv[argv.index("--patch") + 1].partition(":")
        patch = getattr(importlib.import_module(module_name), function)
    result = run(n, "--precheck" in argv, patch)
    a, b = result["A"], result.get("B")
    print(f"{'segment (us since the previous mark)':40s} {'A':>8s}" + (f" {'B':>8s} {'B - A':>8s}" if b else ""))
    for label, value in a.items():
        line = f"{label:40s} {value:8.1f}"
        if b is not None and label in b:
            line += f" {b[label]:8.1f} {b[label] - value:+8.1f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
