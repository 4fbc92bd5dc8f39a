"""Benchmarks for imm-batch-updater (issue #5). Every figure is a ratio of two things measured in the same run.

    python3 dev.py bench            # full run, a few minutes on 2 cores (= .venv/bin/python -m bench)
    python3 dev.py bench --quick    # small N, seconds: checks that every figure is produced (tests/bench)

Figures (target in brackets):
1. warm overhead [<= 1.10]: median of one update through `handler.handler` (direct invocation bytes + an FC
   context) / median of a bare SDK `update_batch_with_options`, same endpoint and STS key, interleaved,
   IMM_PRECHECK=false; "(precheck on)": the same with the precheck / a bare GetBatch + UpdateBatch pair;
   ", 20 ms IMM": the first row with 20 ms of injected IMM latency (context: closer to a real call).
2. cold start [<= 1.25]: fresh process importing handler and serving its first update / fresh process importing
   the IMM client, building it and making the same call (medians of alternating runs).
3. throughput [<= 0.20]: one 100-message MNS queue delivery (EventBridge batch push) / 100 single updates one
   after the other, both with 50 ms injected latency on GetBatch and UpdateBatch.
4. memory [<= 100 MB]: peak RSS (VmHWM) of a fresh process serving 1,000 updates through `handler.handler`.
5. validation [> 1]: documents/s through the function's compiled validator / documents/s when a jsonschema
   Draft202012Validator is built for every call.
6. fleet [0.90-1.15, 0 throttled]: one selector document over 200 batches, 20 ms IMM latency, IMM_MAX_QPS=50,
   against an emulator enforcing a 50 calls/s quota / the 4 s that quota allows; plus a control run unpaced.

The warm-overhead and throughput figures run the emulator in a process of its own (`bench/_emulator.py`), as IMM
is across a network: in-process, its request handling would share the GIL and the CPU-time count with the code
being measured. The cold-start and memory figures run the function in fresh subprocesses against an emulator in
this process. The full mode also sweeps UPDATE_CONCURRENCY for the throughput figure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROJECT, BATCH = "demo-project", "batch-demo-ready"
REGION = "cn-hangzhou"
# Function settings the bench controls; anything else set in the caller's environment is removed first.
FUNCTION_ENV_PREFIXES = ("IMM_", "RESULT_", "ALIBABA_CLOUD_")
FUNCTION_ENV = (
    "HTTP_AUTH WEBHOOK_SECRET OSS_ENDPOINT MAX_BODY_BYTES MAX_DOCUMENTS UPDATE_CONCURRENCY FC_REGION "
    "TRIGGER_MNS_TOPICS OSS_MAX_OBJECT_BYTES"
).split()


# ---- shared pieces -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """A made-up STS key triple for this run (FC hands the function STS credentials; the emulator checks them)."""

    access_key_id: str
    access_key_secret: str
    security_token: str

    @classmethod
    def new(cls) -> Key:
        return cls("STS.bench" + secrets.token_hex(6), secrets.token_urlsafe(24), "tok-" + secrets.token_urlsafe(48))

    def env(self) -> str:
        return " ".join((self.access_key_id, self.access_key_secret, self.security_token))


def fc_context(key: Key, timeout: float = 60) -> SimpleNamespace:
    """Shaped like FC's context (tests/conftest.py `fc_context`)."""
    return SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=SimpleNamespace(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token,
        ),
        function=SimpleNamespace(name="imm-batch-updater", handler="handler.handler", memory=256, timeout=timeout),
        region=REGION,
        account_id="1234567890",
    )


def clean_function_env() -> None:
    for name in list(os.environ):
        if name.startswith(FUNCTION_ENV_PREFIXES) or name in FUNCTION_ENV:
            del os.environ[name]


def point_function_at(endpoint: str, precheck: bool, concurrency: int | None = None) -> None:
    os.environ.update(
        {
            "IMM_ENDPOINT": endpoint,
            "IMM_PROTOCOL": "http",
            "IMM_REGION": REGION,
            "IMM_PRECHECK": "true" if precheck else "false",
        }
    )
    if concurrency is None:
        os.environ.pop("UPDATE_CONCURRENCY", None)
    else:
        os.environ["UPDATE_CONCURRENCY"] = str(concurrency)
    from imm_batch_updater.config import Settings

    Settings.reload()  # FC fixes an instance's environment; the bench changes it between figures


def bare_client(endpoint: str, key: Key) -> Any:
    from alibabacloud_imm20200930.client import Client
    from alibabacloud_tea_openapi.models import Config

    return Client(
        Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token,
            endpoint=endpoint,
            protocol="http",
            region_id=REGION,
        )
    )


@contextlib.contextmanager
def function_stdout_discarded() -> Iterator[None]:
    """The function writes one JSON log line per outcome to stdout; keep the bench's own output readable."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


class ExternalEmulator:
    """`bench/_emulator.py` in a subprocess: the emulator on the other end of a socket, like IMM."""

    def __init__(self, key: Key, batches: list[str] | None = None, faults: list[str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._emulator"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        config = {"key": [key.access_key_id, key.access_key_secret, key.security_token]}
        config.update({"project": PROJECT, "batches": batches or [], "faults": faults or []})
        self.proc.stdin.write(json.dumps(config) + "\n")
        self.proc.stdin.flush()
        self.endpoint = self.proc.stdout.readline().strip()
        if not self.endpoint:
            self.proc.kill()
            raise RuntimeError("the emulator process did not start")

    def __enter__(self) -> ExternalEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Row:
    figure: str
    ratio: str
    target: str
    ok: bool
    measured: str


def ratio_row(figure: str, a: float, b: float, target: float, unit: str = "ms") -> Row:
    scale = 1000.0 if unit == "ms" else 1.0
    ratio = a / b
    measured = f"{a * scale:.2f} vs {b * scale:.2f} {unit}"
    return Row(figure, f"{ratio:.3f}", f"<= {target:.2f}", ratio <= target, measured)


# ---- 1. warm overhead --------------------------------------------------------------------------------------------
def warm_overhead(n: int, n_latency: int) -> list[Row]:
    key = Key.new()
    rows = []
    with ExternalEmulator(key) as ext:
        progress(f"warm overhead: {n} interleaved pairs, precheck off")
        fn, sdk = _interleaved(ext.endpoint, key, precheck=False, n=n)
        rows.append(ratio_row("warm overhead", fn, sdk, 1.10))
        progress(f"warm overhead: {n} interleaved pairs, precheck on")
        fn, sdk = _interleaved(ext.endpoint, key, precheck=True, n=n)
        rows.append(ratio_row("warm overhead (precheck on)", fn, sdk, 1.10))
    with ExternalEmulator(key, faults=["UpdateBatch:latency:*:seconds=0.02"]) as ext:
        progress(f"warm overhead: {n_latency} interleaved pairs with 20 ms IMM latency")
        fn, sdk = _interleaved(ext.endpoint, key, precheck=False, n=n_latency)
        rows.append(ratio_row("warm overhead, 20 ms IMM", fn, sdk, 1.10))
    return rows


def _interleaved(endpoint: str, key: Key, precheck: bool, n: int, warmup: int = 20) -> tuple[float, float]:
    """Median seconds of one update through the handler and through the bare SDK, run alternately."""
    from alibabacloud_imm20200930 import models
    from darabonba.runtime import RuntimeOptions

    import handler

    point_function_at(endpoint, precheck)
    client = bare_client(endpoint, key)
    runtime = RuntimeOptions(read_timeout=10000, connect_timeout=3000)
    total = warmup + n
    # Each side writes values of its own ("f7" and "b7"): the function never finds the batch already holding its
    # document (with the precheck, an unchanged batch is not sent again, which would not be the same work).
    docs = [{"ProjectName": PROJECT, "Id": BATCH, "Tags": {"bench": f"f{i}"}} for i in range(total)]
    events = [json.dumps(doc).encode() for doc in docs]
    contexts = [fc_context(key) for _ in range(total)]
    results: list[Any] = []

    def function(i: int) -> None:
        results.append(handler.handler(events[i], contexts[i]))

    def bare(i: int) -> None:
        if precheck:
            client.get_batch_with_options(models.GetBatchRequest(project_name=PROJECT, id=BATCH), runtime)
        request = models.UpdateBatchRequest(project_name=PROJECT, id=BATCH, tags={"bench": f"b{i}"})
        client.update_batch_with_options(request, runtime)

    fn_times: list[float] = []
    sdk_times: list[float] = []
    clock = time.perf_counter
    with function_stdout_discarded():
        for i in range(total):
            # Alternate which side goes first, so neither always runs right after the other.
            sides = ((function, fn_times), (bare, sdk_times))
            for call, times in sides if i % 2 == 0 else sides[::-1]:
                t0 = clock()
                call(i)
                elapsed = clock() - t0
                if i >= warmup:
                    times.append(elapsed)
    statuses = {(r["results"][0]["status"], r["results"][0].get("unchanged", False)) for r in results}
    if statuses != {("updated", False)}:
        raise RuntimeError(f"the function did not update (each time, with an UpdateBatch call): {statuses}")
    return statistics.median(fn_times), statistics.median(sdk_times)


# ---- 2. cold start -----------------------------------------------------------------------------------------------
_PRELUDE = """
import time
t0 = time.perf_counter()
import json, os, sys
ak, sk, token = os.environ["BENCH_KEY"].split(" ")
"""

COLD_FUNCTION = (
    _PRELUDE
    + """
from types import SimpleNamespace
import handler
ctx = SimpleNamespace(request_id="cold", credentials=SimpleNamespace(access_key_id=ak, access_key_secret=sk,
      security_token=token), function=SimpleNamespace(name="f", handler="handler.handler", memory=256, timeout=60),
      region="cn-hangzhou", account_id="1")
doc = {"ProjectName": "demo-project", "Id": "batch-demo-ready", "Tags": {"cold": "1"}}
result = handler.handler(json.dumps(doc).encode(), ctx)
elapsed = time.perf_counter() - t0
assert result["results"][0]["status"] == "updated", result
sys.stderr.write("\\nBENCH " + json.dumps({"seconds": elapsed}))
"""
)

COLD_SDK = (
    _PRELUDE
    + """
from alibabacloud_imm20200930.client import Client
from alibabacloud_imm20200930 import models
from alibabacloud_tea_openapi.models import Config
from darabonba.runtime import RuntimeOptions
client = Client(Config(access_key_id=ak, access_key_secret=sk, security_token=token,
                       endpoint=os.environ["IMM_ENDPOINT"], protocol="http", region_id="cn-hangzhou"))
request = models.UpdateBatchRequest(project_name="demo-project", id="batch-demo-ready", tags={"cold": "1"})
client.update_batch_with_options(request, RuntimeOptions(read_timeout=10000, connect_timeout=3000))
elapsed = time.perf_counter() - t0
sys.stderr.write("\\nBENCH " + json.dumps({"seconds": elapsed}))
"""
)


def run_probe(code: str, *args: str, timeout: float = 300, cwd: Path = ROOT) -> tuple[dict[str, Any], float]:
    """Run `code` in a fresh interpreter in `cwd`; (the JSON it reports on stderr, wall seconds including
    start-up)."""
    t0 = time.perf_counter()
    command = [sys.executable, "-c", code, *args]
    proc = subprocess.run(command, cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "BENCH " not in proc.stderr:
        raise RuntimeError(f"probe failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stderr.rsplit("BENCH ", 1)[1]), wall


def packaged_function(into: Path) -> Path:
    """The function's own modules as the code package holds them: copied without any byte code a developer's
    Python left, then compiled by deploy/build.py's step (checked-hash byte code, which FC's read-only /code cannot
    write itself). The dependencies keep the byte code of their install, as `s build` leaves them."""
    from deploy.build import compile_function, copy_function  # the repository is on sys.path from here (above)

    compile_function(copy_function(into))
    return into


def cold_start(endpoint: str, key: Key, n: int) -> list[Row]:
    """Medians over n fresh processes per side, alternating; the figure uses the time from the first import to
    the answer (the interpreter's own start-up, the same on both sides, is shown in the wall times). The function
    side runs from a copy laid out like the code package `deploy/build.py` makes."""
    point_function_at(endpoint, precheck=False)  # the same single UpdateBatch call on both sides
    os.environ["BENCH_KEY"] = key.env()
    progress(f"cold start: {n} fresh processes per side")
    fn, sdk, fn_wall, sdk_wall = [], [], [], []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            package = packaged_function(Path(tmp))
            for i in range(n):
                sides = ((COLD_FUNCTION, fn, fn_wall, package), (COLD_SDK, sdk, sdk_wall, ROOT))
                for code, times, walls, cwd in sides if i % 2 == 0 else sides[::-1]:
                    report, wall = run_probe(code, cwd=cwd)
                    times.append(report["seconds"])
                    walls.append(wall)
    finally:
        del os.environ["BENCH_KEY"]
    m = statistics.median
    row = ratio_row("cold start", m(fn), m(sdk), 1.25)
    row.measured += f" (wall incl. interpreter: {m(fn_wall) * 1000:.0f} vs {m(sdk_wall) * 1000:.0f} ms)"
    return [row]


# ---- 3. throughput -----------------------------------------------------------------------------------------------
def mns_queue_available() -> bool:
    return importlib.util.find_spec("imm_batch_updater.sources.mns_queue") is not None


def delivery(batch_ids: list[str], run: int) -> tuple[bytes, str]:
    """One delivery holding one update per batch: an EventBridge MNS batch push (or, without the MNS adapter, a
    direct-invocation bulk array of the same documents)."""
    docs = [{"ProjectName": PROJECT, "Id": b, "Tags": {"run": str(run)}} for b in batch_ids]
    if not mns_queue_available():
        return json.dumps(docs).encode(), "direct bulk array (MNS queue adapter missing)"
    events = [
        {
            "id": f"ev-{run}-{i}",
            "source": "MNS-imm-batch-updater-updates",
            "specversion": "1.0",
            "type": "mns:Queue:SendMessage",
            "subject": f"acs:mns:{REGION}:1234567890:queues/updates",
            "time": "2026-01-01T00:00:00.000Z",
            "datacontenttype": "application/json;charset=utf-8",
            "data": {"requestId": f"req-{run}-{i}", "messageId": f"msg-{run}-{i}", "messageBody": json.dumps(doc)},
        }
        for i, doc in enumerate(docs)
    ]
    return json.dumps(events).encode(), "MNS queue delivery"


def _deliver(event: bytes, key: Key, expected: int) -> float:
    import handler

    t0 = time.perf_counter()
    with function_stdout_discarded():
        result = handler.handler(event, fc_context(key, timeout=600))
    elapsed = time.perf_counter() - t0
    statuses = [r["status"] for r in result["results"]]
    if statuses != ["updated"] * expected:
        raise RuntimeError(f"delivery not applied: {sorted(set(statuses))}")
    return elapsed


def throughput(messages: int, sweep: tuple[int, ...]) -> tuple[list[Row], list[str]]:
    from imm_batch_updater.config import Settings

    key = Key.new()
    batch_ids = [f"batch-bench-{i:03d}" for i in range(messages)]
    latency = ["GetBatch:latency:*:seconds=0.05", "UpdateBatch:latency:*:seconds=0.05"]
    notes: list[str] = []
    with ExternalEmulator(key, batches=batch_ids, faults=latency) as ext:
        point_function_at(ext.endpoint, precheck=True)
        progress(f"throughput: {messages} single updates one after the other (50 ms IMM latency)")
        sequential = 0.0
        for i, batch_id in enumerate(batch_ids):
            doc = json.dumps({"ProjectName": PROJECT, "Id": batch_id, "Tags": {"single": str(i)}}).encode()
            sequential += _deliver(doc, key, 1)
        event, label = delivery(batch_ids, run=0)
        progress(f"throughput: one {messages}-message {label}")
        batch = _deliver(event, key, messages)
        row = ratio_row(f"throughput ({label})" if "missing" in label else "throughput", batch, sequential, 0.20, "s")
        row.measured += f", {messages} updates, UPDATE_CONCURRENCY={Settings().concurrency} (default)"
        rows = [row]
        if sweep:
            notes.append(f"UPDATE_CONCURRENCY sweep ({messages}-message {label}, 50 ms IMM latency, {_cpus()} CPUs):")
            notes.append("  concurrency   wall s   vs sequential   function CPU s   updates/s")
            for run, concurrency in enumerate(sweep, start=1):
                point_function_at(ext.endpoint, precheck=True, concurrency=concurrency)
                progress(f"throughput sweep: UPDATE_CONCURRENCY={concurrency}")
                event, _ = delivery(batch_ids, run=run)
                cpu0 = time.process_time()
                wall = _deliver(event, key, messages)
                cpu = time.process_time() - cpu0
                ratio = wall / sequential
                notes.append(
                    f"  {concurrency:>11}   {wall:6.2f}   {ratio:13.3f}   {cpu:14.2f}   {messages / wall:9.0f}"
                )
            point_function_at(ext.endpoint, precheck=True)
    return rows, notes


# ---- 4. memory ---------------------------------------------------------------------------------------------------
MEMORY = (
    _PRELUDE
    + """
import resource
from types import SimpleNamespace
def peak_kb():
    # VmHWM: this process image's own peak. ru_maxrss would not do: Linux carries it across fork and exec, so a
    # probe started by a big parent reports the parent's size.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import handler
def ctx():
    return SimpleNamespace(request_id="mem", credentials=SimpleNamespace(access_key_id=ak, access_key_secret=sk,
        security_token=token), function=SimpleNamespace(name="f", handler="handler.handler", memory=256, timeout=60),
        region="cn-hangzhou", account_id="1")
n = int(sys.argv[1])
real_stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
first_kb = 0
for i in range(n):
    doc = {"ProjectName": "demo-project", "Id": "batch-demo-ready", "Tags": {"i": str(i)}}
    result = handler.handler(json.dumps(doc).encode(), ctx())
    assert result["results"][0]["status"] == "updated", result
    if i == 0:
        first_kb = peak_kb()
sys.stderr.write("\\nBENCH " + json.dumps({"first_kb": first_kb, "peak_kb": peak_kb()}))
"""
)


def memory(endpoint: str, key: Key, updates: int) -> list[Row]:
    point_function_at(endpoint, precheck=True)
    os.environ["BENCH_KEY"] = key.env()
    progress(f"memory: one process serving {updates} updates")
    try:
        report, _ = run_probe(MEMORY, str(updates), timeout=900)
    finally:
        del os.environ["BENCH_KEY"]
    peak, first = report["peak_kb"] / 1024, report["first_kb"] / 1024
    measured = f"peak RSS after {updates} updates; {first:.1f} MB after the first"
    return [Row("memory", f"{peak:.1f} MB", "<= 100 MB", peak <= 100, measured)]


# ---- 5. validation -----------------------------------------------------------------------------------------------
DOCUMENTS = [
    {"ProjectName": PROJECT, "Id": BATCH, "Tags": {"team": "media", "priority": 2}},
    {
        "ProjectName": PROJECT,
        "Id": "batch-4eb9223f-3e88-42d3-a578-3f2852000000",
        "Actions": [{"Name": "doc/convert", "Parameters": ["pages=3", "target=pdf"]}],
        "Input": {"OSS": {"Bucket": "demo-bucket", "Prefix": "incoming/", "MatchExpressions": ["suffix=.docx"]}},
        "Tags": {"a": "b", "n": 1, "ok": True},
        "Resume": True,
    },
    {"ProjectName": PROJECT, "Id": BATCH, "Input": {"OSS": {"Bucket": "demo-bucket", "Prefix": "in/"}}},
]


def validation(n: int) -> list[Row]:
    from jsonschema import Draft202012Validator

    from imm_batch_updater.validation import schema, validate

    progress(f"validation: {n} documents")
    docs = [json.loads(json.dumps(d)) for d in DOCUMENTS]  # fresh copies
    for doc in docs:
        assert not validate(doc)
    compiled = _docs_per_second(lambda doc: validate(doc), docs, n)

    def rebuild_each_time(doc: Any) -> list[Any]:
        return list(Draft202012Validator(schema()).iter_errors(doc))

    rebuilt = _docs_per_second(rebuild_each_time, docs, max(30, n // 20))
    measured = f"{compiled:,.0f} vs {rebuilt:,.0f} documents/s"
    return [Row("validation", f"{compiled / rebuilt:.1f}x", "> 1", compiled > rebuilt, measured)]


def _docs_per_second(check: Callable[[Any], Any], docs: list[Any], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        if check(docs[i % len(docs)]):
            raise RuntimeError("a valid benchmark document was refused")
    return n / (time.perf_counter() - t0)


# ---- 6. fleet ------------------------------------------------------------------------------------------------------
def fleet(batches: int, qps: float = 50.0) -> tuple[list[Row], list[str]]:
    """One selector document over `batches` batches, 20 ms IMM latency, IMM_MAX_QPS=qps, against an emulator that
    enforces a quota of `qps` calls/s (a token bucket, like the gateway): elapsed / the time the quota allows
    (`batches` / qps), and the throttling answers drawn. A control run without IMM_MAX_QPS shows what pacing saves.
    In-process emulator: the figure is made of waiting, not of CPU."""
    from emulator import Emulator

    key = Key.new()
    rows: list[Row] = []
    notes: list[str] = []
    doc = {"ProjectName": PROJECT, "Selector": {"TagSelector": "bench=fleet"}, "MaxBatches": 10_000}
    for paced in (True, False):
        with Emulator(seed="demo") as emu:
            emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
            emu.imm.create_batches(PROJECT, batches, state="Ready", tags={"bench": "fleet"})
            for action in ("ListBatches", "UpdateBatch"):
                emu.faults.inject(action, "latency", count=None, seconds=0.02)
            emu.faults.quota(qps)
            point_function_at(emu.endpoint, precheck=True)
            os.environ["IMM_MAX_QPS"] = str(qps) if paced else "0"
            from imm_batch_updater.config import Settings

            Settings.reload()
            label = f"IMM_MAX_QPS={qps:g}" if paced else "no IMM_MAX_QPS (control)"
            progress(f"fleet: one selector over {batches} batches, {label}")
            t0 = time.perf_counter()
            with function_stdout_discarded():
                try:
                    result = handler_call(json.dumps({**doc, "Tags": {"run": label}}).encode(), key)
                except Exception as exc:  # DeliveryIncomplete in the control run: throttled beyond its retries
                    result = {"results": [], "error": type(exc).__name__}
            elapsed = time.perf_counter() - t0
            calls = len(emu.calls(service="imm"))
            throttled = emu.faults.count(kind="throttle")
            # Counted from IMM's side: the control run ends in DeliveryIncomplete, whose results never come back.
            updated = sum(1 for r in emu.calls(action="UpdateBatch", service="imm") if r.status == 200)
            reported = sum(1 for r in result["results"] if r["status"] == "updated")
        del os.environ["IMM_MAX_QPS"]
        allowed = batches / qps
        if paced:
            ratio = elapsed / allowed
            ok = 0.9 <= ratio <= 1.15 and throttled == 0 and updated == reported == batches
            measured = (
                f"{elapsed:.2f} s vs {allowed:.1f} s, {calls} IMM calls, {throttled} throttled, {updated} updated"
            )
            rows.append(
                Row(f"fleet ({batches} batches, {label})", f"{ratio:.3f}", "0.90-1.15, 0 throttled", ok, measured)
            )
        else:
            notes.append(
                f"fleet control, {label}: {elapsed:.2f} s, {calls} IMM calls, {throttled} answered Throttling.User, "
                f"{updated} of {batches} batches updated by IMM"
                + (f"; the delivery raised {result['error']} (redelivered on FC)" if "error" in result else "")
            )
    return rows, notes


def handler_call(event: bytes, key: Key) -> Any:
    import handler

    return handler.handler(event, fc_context(key, timeout=120))


# ---- report ------------------------------------------------------------------------------------------------------
def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{_cpus()} CPUs ({cpu}), {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def table(rows: list[Row]) -> str:
    cells = [["figure", "ratio", "target", "result", "measured (medians)"]]
    cells += [[r.figure, r.ratio, r.target, "PASS" if r.ok else "FAIL", r.measured] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(4)] + [0]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small N: only checks that every figure is produced")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = {
        "warm": 40 if quick else 1500,
        "warm_latency": 10 if quick else 150,
        "cold": 2 if quick else 10,
        "messages": 20 if quick else 100,
        "sweep": () if quick else (1, 2, 4, 8, 16, 32),
        "memory": 100 if quick else 1000,
        "validation": 300 if quick else 30000,
        "fleet": 50 if quick else 200,
    }
    clean_function_env()
    started = time.perf_counter()
    rows: list[Row] = []
    rows += warm_overhead(sizes["warm"], sizes["warm_latency"])

    from emulator import Emulator

    key = Key.new()
    with Emulator(seed="demo") as emu:
        emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
        rows += cold_start(emu.endpoint, key, sizes["cold"])
        throughput_rows, notes = throughput(sizes["messages"], sizes["sweep"])
        rows += throughput_rows
        rows += memory(emu.endpoint, key, sizes["memory"])
    rows += validation(sizes["validation"])
    fleet_rows, fleet_notes = fleet(sizes["fleet"])
    rows += fleet_rows
    notes += fleet_notes

    mode = "quick mode: small N, the figures are rough" if quick else "full mode"
    print(f"imm-batch-updater benchmarks ({mode}), {time.perf_counter() - started:.0f} s")
    print(f"machine: {machine()}")
    print(table(rows))
    for line in notes:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
