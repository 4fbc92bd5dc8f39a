"""Where a warm update's time goes outside the IMM call: `python -m bench.profile_warm [N]`.

The warm-overhead figure compares the handler with a bare SDK call, interleaved. This tool runs the same loop
with timing wrappers around the function's steps and prints, for each step, its median exclusive time (its own
code, callees excluded) in microseconds. Each wrapper adds about 0.5 us. It also prints:

- the same handler in a tight loop with the SDK call stubbed out (caches warm, nothing else running), which shows
  how much slower the same Python code runs when every invocation follows a real HTTP call through the SDK;
- a minimal handler that does only what the contract cannot do without (parse the JSON, validate it with the
  compiled validator, make the IMM SDK call, write one JSON log line), interleaved the same way: the floor for the
  warm-overhead ratio on this machine.
"""

from __future__ import annotations

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

# (module, attribute path) of the steps to time; missing ones are skipped (the code may have moved on).
STEPS = [
    ("imm_batch_updater.app", "App.handle"),
    ("imm_batch_updater.config", "Settings.current"),
    ("imm_batch_updater.app", "InvocationContext.__init__"),
    ("imm_batch_updater.app", "decode_event"),
    ("imm_batch_updater.sources", "Sources.detect"),
    ("imm_batch_updater.sources.direct", "DirectSource.receive"),
    ("imm_batch_updater.app", "first_copies"),
    ("imm_batch_updater.app", "App.apply"),
    ("imm_batch_updater.app", "documents_of"),
    ("imm_batch_updater.documents", "validate"),
    ("imm_batch_updater.documents", "_one"),
    ("imm_batch_updater.app", "App._apply_requests"),
    ("imm_batch_updater.app", "App._imm_client"),
    ("imm_batch_updater.context", "InvocationContext.credentials"),
    ("imm_batch_updater.app", "process"),
    ("imm_batch_updater.app", "apply_update"),
    ("imm_batch_updater.imm", "ImmClient.update_batch"),
    ("imm_batch_updater.imm", "ImmClient._call"),
    ("imm_batch_updater.retry", "call"),
    ("imm_batch_updater.imm", "client_for"),
    ("alibabacloud_imm20200930.client", "Client.update_batch_with_options"),
    ("alibabacloud_tea_openapi.client", "Client.call_api"),
    ("imm_batch_updater.app", "App.report"),
    ("imm_batch_updater.app", "write_log"),
    ("imm_batch_updater.logs", "write_all"),
    ("imm_batch_updater.sources.base", "EventTrigger.answer"),
]
SDK_STEP = "Client.call_api"


def _instrument() -> dict[str, list[float]]:
    import importlib

    own: dict[str, list[float]] = {}
    stack: list[float] = []
    clock = time.perf_counter

    def wrap(owner: Any, attr: str, label: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            stack.append(0.0)
            try:
                return inner(*args, **kwargs)
            finally:
                elapsed = clock() - t0
                children = stack.pop()
                own.setdefault(label, []).append(elapsed - children)
                if stack:
                    stack[-1] += elapsed

        import inspect

        static = isinstance(inspect.getattr_static(owner, attr), staticmethod)
        setattr(owner, attr, staticmethod(timed) if static else timed)

    for module_name, path in STEPS:
        owner: Any = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent, None)
        if owner is not None and hasattr(owner, attr):
            wrap(owner, attr, path)
    return own


def _loop(n: int, function: Callable[[bytes, Any], Any], bare: Callable[[int], Any], key: Key) -> tuple[float, float]:
    fn_times: list[float] = []
    sdk_times: list[float] = []
    with function_stdout_discarded():
        for i in range(n):
            event = json.dumps({"ProjectName": PROJECT, "Id": BATCH, "Tags": {"p": f"f{i}"}}).encode()
            context = fc_context(key)
            t0 = time.perf_counter()
            function(event, context)
            t1 = time.perf_counter()
            bare(i)
            fn_times.append(t1 - t0)
            sdk_times.append(time.perf_counter() - t1)
    return statistics.median(fn_times), statistics.median(sdk_times)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 2000
    clean_function_env()
    key = Key.new()
    from alibabacloud_imm20200930 import models
    from darabonba.runtime import RuntimeOptions

    with ExternalEmulator(key) as ext:
        point_function_at(ext.endpoint, precheck=False)
        import handler
        from imm_batch_updater.validation import fast_check

        client = bare_client(ext.endpoint, key)
        runtime = RuntimeOptions(read_timeout=10000, connect_timeout=3000)

        def bare(i: int) -> None:
            request = models.UpdateBatchRequest(project_name=PROJECT, id=BATCH, tags={"p": f"b{i}"})
            client.update_batch_with_options(request, runtime)

        # The floor: only what the contract needs, with its own client (same endpoint and key).
        minimal_client = bare_client(ext.endpoint, key)
        check = fast_check()
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

        def minimal(event: bytes, context: Any) -> dict[str, Any]:
            doc = json.loads(event)
            check(doc)
            request = models.UpdateBatchRequest(project_name=doc["ProjectName"], id=doc["Id"], tags=doc["Tags"])
            answer = minimal_client.update_batch_with_options(request, runtime)
            line = {"ts": time.time(), "level": "INFO", "msg": "outcome", "request_id": context.request_id}
            line.update(project=doc["ProjectName"], batch_id=doc["Id"], status="updated")
            sys.stdout.write(encoder.encode(line) + "\n")
            sys.stdout.flush()
            return {"results": [{"status": "updated", "request_id": answer.body.request_id}]}

        fn, sdk = _loop(n, minimal, bare, key)
        print(f"minimal handler: {fn / sdk:.3f} ({(fn - sdk) * 1e6:.0f} us over a {sdk * 1e6:.0f} us SDK call)")
        tight = _tight_loop(key)  # before the wrappers go in
        own = _instrument()
        fn, sdk = _loop(n, handler.handler, bare, key)
    overhead = sum(statistics.median(v) for k, v in own.items() if k != SDK_STEP)
    print(
        f"handler.handler: {fn / sdk:.3f} ({(fn - sdk) * 1e6:.0f} us over a {sdk * 1e6:.0f} us SDK call, wrappers on)"
    )
    print(f"{'step':40s} {'own us':>7s}")
    for label, values in own.items():
        if label != SDK_STEP:
            print(f"{label:40s} {statistics.median(values) * 1e6:7.1f}")
    print(f"{'sum of the steps':40s} {overhead * 1e6:7.1f}")
    print(f"the handler in a tight loop, SDK call stubbed out (no wrappers): {tight * 1e6:.1f} us per update")
    return 0


def _tight_loop(key: Key, n: int = 5000) -> float:
    """The handler's own work with warm caches: the SDK call replaced by a canned answer."""
    from alibabacloud_tea_openapi.client import Client

    import handler

    answer = {"body": {"RequestId": "stub"}, "headers": {}, "statusCode": 200}
    real = Client.call_api
    Client.call_api = lambda self, params, request, runtime: answer  # type: ignore[method-assign]
    try:
        event = json.dumps({"ProjectName": PROJECT, "Id": BATCH, "Tags": {"p": "1"}}).encode()
        context = fc_context(key)
        with function_stdout_discarded():
            for _ in range(200):
                handler.handler(event, context)
            t0 = time.perf_counter()
            for _ in range(n):
                handler.handler(event, context)
            return (time.perf_counter() - t0) / n
    finally:
        Client.call_api = real  # type: ignore[method-assign]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
