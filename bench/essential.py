"""How much of the warm overhead is the work itself and how much is the pipeline around it:
`python -m bench.essential [N]`.

Three things run in turn, each right after a bare SDK call (as in the warm-overhead figure, so the caches are as
cold as there), precheck off, against the bundled emulator in a process of its own:

- the bare SDK call (`update_batch_with_options`, the figure's denominator);
- `handler.handler` on a direct-invocation document (the figure's numerator);
- `essential`, below: the steps no version of this function can skip, written as one flat function with the
  package's own parts: read the context, `strictjson.decode` (duplicate keys, NaN, lone surrogates),
  `validation.validate`, `imm.update_request` and the per-attempt runtime options, the same checked SDK client
  class, the answer's RequestId, one outcome log line (orjson, written to stdout's descriptor) and the answer.

What `essential` leaves out is the structure the handler adds around the same steps: settings, the invocation
context, source detection, `Message`/`Delivery`/`UpdateRequest`/`Outcome`, the `ImmClient` and its retry loop,
the watchdog, and the general log and answer code. This is a measurement, never a second implementation: nothing in
the package calls it, and its answer is only checked for the status.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

from bench.__main__ import (
    BATCH,
    PROJECT,
    REGION,
    ExternalEmulator,
    Key,
    bare_client,
    clean_function_env,
    fc_context,
    function_stdout_discarded,
    point_function_at,
)


def essential(event: bytes, context: Any, client: Any) -> dict[str, Any]:
    """One direct update, the unavoidable steps only (see the module docstring)."""
    import orjson
    from alibabacloud_imm20200930 import models

    from imm_batch_updater import imm, logs, strictjson, validation

    started = time.monotonic()
    request_id = context.request_id
    timeout_s = float(context.function.timeout)
    doc = strictjson.decode(event).value
    if validation.validate(doc):
        raise ValueError("the bench document is refused")
    request = imm.update_request(models, doc["ProjectName"], doc["Id"], {"Tags": doc["Tags"]})
    runtime = imm._runtime_options(*imm.attempt_timeouts(int(timeout_s * 900), 3000, 10000))
    imm._answers.body = None
    client.update_batch_with_options(request, runtime)
    imm_request_id = imm._answers.body["RequestId"]
    record = {
        "ts": logs.timestamp(),
        "level": "INFO",
        "msg": "outcome",
        "request_id": request_id,
        "function": context.function.name,
        "source": "direct",
        "message_id": request_id,
        "project": doc["ProjectName"],
        "batch_id": doc["Id"],
        "status": "updated",
        "final": True,
        "resumed": False,
        "attempts": 1,
        "imm_request_id": imm_request_id,
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    result = {"status": "updated", "project": doc["ProjectName"], "batch_id": doc["Id"], "resumed": False}
    return {"results": [{**result, "attempts": 1, "request_id": imm_request_id}]}


def run(n: int) -> dict[str, float]:
    """Median microseconds of the bare call, the handler and `essential`."""
    from alibabacloud_imm20200930 import models
    from alibabacloud_tea_openapi.models import Config
    from darabonba.runtime import RuntimeOptions

    import handler
    from imm_batch_updater import imm

    clean_function_env()
    key = Key.new()
    times: dict[str, list[float]] = {"bare SDK call": [], "handler": [], "essential": []}
    clock = time.perf_counter
    with ExternalEmulator(key) as ext:
        point_function_at(ext.endpoint, precheck=False)
        client = bare_client(ext.endpoint, key)
        runtime = RuntimeOptions(read_timeout=10000, connect_timeout=3000)
        config = Config(  # as bench.__main__.bare_client's
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token,
            endpoint=ext.endpoint,
            protocol="http",
            region_id=REGION,
        )
        checked = imm._client_class()(config)  # the function's own client class (its answers checked)
        with function_stdout_discarded():
            for i in range(n + 50):
                event = json.dumps({"ProjectName": PROJECT, "Id": BATCH, "Tags": {"s": f"f{i}"}}).encode()
                context = fc_context(key)
                request = models.UpdateBatchRequest(project_name=PROJECT, id=BATCH, tags={"s": f"b{i}"})
                t0 = clock()
                client.update_batch_with_options(request, runtime)
                t1 = clock()
                side = "handler" if i % 2 == 0 else "essential"
                answer = handler.handler(event, context) if side == "handler" else essential(event, context, checked)
                t2 = clock()
                if answer["results"][0]["status"] != "updated":
                    raise RuntimeError(f"{side} did not update: {answer}")
                if i >= 50:
                    times["bare SDK call"].append(t1 - t0)
                    times[side].append(t2 - t1)
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def main(argv: list[str]) -> int:
    n = int(next((a for a in argv if a.isdigit()), "3000"))
    result = run(n)
    bare = result["bare SDK call"]
    print(f"{'':24s} {'median us':>10s} {'/ bare call':>12s}")
    for name, value in result.items():
        print(f"{name:24s} {value:10.1f} {value / bare:12.3f}")
    structure = result["handler"] - result["essential"]
    print(f"{'the pipeline around it':24s} {structure:10.1f} {structure / bare:+12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
