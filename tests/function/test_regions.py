"""IMM in another region than the function: IMM_REGION is IMM's region and nothing else's.

IMM is offered in fewer regions than FC, so a function in one region calling IMM in another (IMM_REGION) is a
legitimate setup. Everything else the function talks to is its own and in its own region (`context.region`, then
FC_REGION): the work queue (its own EventBridge trigger), the result topic, the result function, config objects
and OSS objects whose event record names no region. Each case below runs handler.handler with the real SDKs, no
endpoint configured, so the function computes each peer's regional default host; the test records that host (and
so which region the function chose) and routes the request to the bundled emulator (or, for the FC API, a local
receiver), like a DNS entry would, so each call also completes and is checked on receipt: the emulator's OSS
checks the V4 signature's region, which must be the bucket's, the function's.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from imm_batch_updater import app as app_module
from imm_batch_updater import context as context_module
from imm_batch_updater.context import Endpoint
from tests.conftest import PROJECT, READY, fc_context
from tests.fleet.selections import FLEET, QUEUE, selector_doc
from tests.sinks.conftest import SINK_ENV, Receiver, Reply
from tests.triggers.events import oss_event, oss_record, run

FUNCTION_REGION = "cn-hangzhou"  # the emulator's region, where the function runs (its context says so)
IMM_REGION = "ap-southeast-1"  # where IMM is
ACCOUNT = "1234567890"  # tests.conftest.fc_context's account_id
TAGS = {"Tags": {"owner": "media-team"}}
BUCKET, KEY = "function-config", "schedules/nightly.json"
TOPIC = "imm-results"

# Every module that computes a service endpoint from a region (each imports context.endpoint): a new one must be
# added here, with a case below, so that its region is checked too.
PEERS = {
    "imm_batch_updater.app": "imm",
    "imm_batch_updater.oss_reader": "oss",
    "imm_batch_updater.workqueue": "mns",
    "imm_batch_updater.sinks.mns_topic": "mns",
    "imm_batch_updater.sinks.fc_function": "fc",
}


def test_every_module_that_computes_an_endpoint_is_covered():
    package = pathlib.Path(context_module.__file__).parent
    users = {
        "imm_batch_updater." + ".".join(path.relative_to(package).with_suffix("").parts)
        for path in package.rglob("*.py")
        if re.search(r"^from imm_batch_updater\.context import .*\bendpoint\b", path.read_text(), re.M)
    }
    assert users == set(PEERS)


@dataclass
class Routed:
    service: str
    host: str  # the regional default host the function computed


@pytest.fixture
def receiver():
    """The FC API's stand-in: accepts every asynchronous invocation (202)."""
    with Receiver() as server:
        server.default = Reply(202, headers={"x-fc-request-id": "fc-req-1"})
        yield server


@pytest.fixture
def routes(fn_env, emu, receiver, monkeypatch) -> Iterator[list[Routed]]:
    """No endpoint configured: each default host the function computes is recorded, then routed to the emulator
    (IMM, OSS, MNS) or the receiver (the FC API)."""
    for name in ("IMM_ENDPOINT", "IMM_PROTOCOL", "OSS_ENDPOINT", "WORK_QUEUE_ENDPOINT", *SINK_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMM_REGION", IMM_REGION)
    local = {"imm": Endpoint("http", emu.endpoint), "oss": Endpoint("http", emu.endpoint)}
    local["mns"] = local["oss"]
    local["fc"] = Endpoint("http", receiver.url.removeprefix("http://"))
    seen: list[Routed] = []
    real = context_module.endpoint

    def routed(service: str, configured: str | None, **kwargs: Any) -> Endpoint:
        where = real(service, configured, **kwargs)
        if configured:
            return where
        seen.append(Routed(service, where.host))
        return local[service]

    for module in PEERS:
        monkeypatch.setattr(importlib.import_module(module), "endpoint", routed)
    app_module._imm_endpoint.cache_clear()  # IMM's endpoint is cached per instance: compute it in this test
    monkeypatch.setattr(app_module, "_last_target", None)
    yield seen
    app_module._imm_endpoint.cache_clear()  # it holds the routed (local) endpoints under real regions' keys


def hosts(seen: list[Routed], service: str) -> set[str]:
    return {r.host for r in seen if r.service == service}


def imm_only(invoke, emu, env) -> dict[str, Any]:
    return invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})


def config_object(invoke, emu, env) -> dict[str, Any]:
    emu.oss.create_bucket(BUCKET)
    emu.oss.put_object(BUCKET, KEY, json.dumps({"ProjectName": PROJECT, "Id": READY, **TAGS}).encode())
    return invoke.direct({"Source": f"oss://{BUCKET}/{KEY}"})


def oss_event_without_region(invoke, emu, env) -> dict[str, Any]:
    data = json.dumps({"ProjectName": PROJECT, "Id": READY, **TAGS}).encode()
    emu.oss.create_bucket(BUCKET)
    etag = emu.oss.put_object(BUCKET, KEY, data).etag
    record = oss_record(BUCKET, KEY, size=len(data), etag=etag)
    del record["region"]  # missing: the function's region
    return run(invoke, oss_event(record))


def work_queue(invoke, emu, env) -> dict[str, Any]:
    emu.mns.create_queue(QUEUE)
    env.setenv("WORK_QUEUE", QUEUE)
    env.setenv("FANOUT_BATCHES", "2")
    emu.imm.create_batches(FLEET, 3, state="Ready", tags={"tier": "gold"})
    result = invoke.direct(selector_doc())
    assert len(emu.mns.queue_messages(QUEUE)) == 1  # sent, signed, and received where it was sent
    return result


def topic_sink(invoke, emu, env) -> dict[str, Any]:
    emu.mns.create_topic(TOPIC)
    env.setenv("RESULT_MNS_TOPIC", TOPIC)
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert [m["tag"] for m in emu.mns.published(TOPIC)] == ["updated"]
    return result


def fc_sink(invoke, emu, env, receiver) -> dict[str, Any]:
    env.setenv("RESULT_FC_FUNCTION", "imm-outcomes")
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    [request] = receiver.requests
    assert request.path == "/2023-03-30/functions/imm-outcomes/invocations"
    assert request.headers["x-fc-invocation-type"] == "Async"
    return result


def fc2_sink(invoke, emu, env, receiver) -> dict[str, Any]:
    env.setenv("RESULT_FC_FUNCTION", "outcome-service/imm-outcomes")
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    [request] = receiver.requests
    assert request.path == "/2016-08-15/services/outcome-service/functions/imm-outcomes/invocations"
    return result


FUNCTION_HOSTS = {
    "oss": f"oss-{FUNCTION_REGION}.aliyuncs.com",
    "mns": f"{ACCOUNT}.mns.{FUNCTION_REGION}.aliyuncs.com",
    "fc": f"{ACCOUNT}.{FUNCTION_REGION}.fc.aliyuncs.com",
}
UPDATED = ["updated"]
# case: (what it runs, the service whose host is checked, the statuses it answers)
CASES: dict[str, tuple[Callable[..., dict[str, Any]], str, list[str]]] = {
    "imm": (imm_only, "imm", UPDATED),
    "config object": (config_object, "oss", UPDATED),
    "oss event without a region": (oss_event_without_region, "oss", UPDATED),
    "work queue": (work_queue, "mns", ["queued"] * 3),
    "mns topic sink": (topic_sink, "mns", UPDATED),
    "fc sink (FC 3.0)": (fc_sink, "fc", UPDATED),
    "fc sink (FC 2.0)": (fc2_sink, "fc", UPDATED),
}


@pytest.mark.parametrize("case", list(CASES))
def test_imm_region_is_for_imm_and_the_function_region_for_the_rest(case, routes, invoke, emu, fn_env, receiver):
    scenario, service, answered = CASES[case]
    args = (invoke, emu, fn_env, receiver) if service == "fc" else (invoke, emu, fn_env)
    result = scenario(*args)
    assert [r["status"] for r in result["results"]] == answered, result
    assert hosts(routes, "imm") == {f"imm.{IMM_REGION}.aliyuncs.com"}  # IMM: IMM_REGION
    if service != "imm":
        assert hosts(routes, service) == {FUNCTION_HOSTS[service]}  # the function's own: its region
    assert not [r.host for r in routes if IMM_REGION in r.host and r.service != "imm"]


def test_vpc_endpoints_follow_the_same_regions(routes, invoke, emu, fn_env):
    """IMM_NETWORK=vpc: IMM's VPC host in IMM_REGION, the function's internal OSS and MNS hosts in its region."""
    fn_env.setenv("IMM_NETWORK", "vpc")
    emu.mns.create_topic(TOPIC)
    fn_env.setenv("RESULT_MNS_TOPIC", TOPIC)
    result = config_object(invoke, emu, fn_env)
    assert [r["status"] for r in result["results"]] == ["updated"]
    assert hosts(routes, "imm") == {f"imm-vpc.{IMM_REGION}.aliyuncs.com"}
    assert hosts(routes, "oss") == {f"oss-{FUNCTION_REGION}-internal.aliyuncs.com"}
    assert hosts(routes, "mns") == {f"{ACCOUNT}.mns.{FUNCTION_REGION}-internal.aliyuncs.com"}


def test_fc_region_is_the_function_region_when_the_context_has_none(routes, invoke, emu, fn_env):
    fn_env.setenv("FC_REGION", FUNCTION_REGION)
    context = fc_context(invoke.sts)
    context.region = None
    emu.oss.create_bucket(BUCKET)
    emu.oss.put_object(BUCKET, KEY, json.dumps({"ProjectName": PROJECT, "Id": READY, **TAGS}).encode())
    result = invoke.direct({"Source": f"oss://{BUCKET}/{KEY}"}, context=context)
    assert [r["status"] for r in result["results"]] == ["updated"]
    assert hosts(routes, "imm") == {f"imm.{IMM_REGION}.aliyuncs.com"}
    assert hosts(routes, "oss") == {FUNCTION_HOSTS["oss"]}


def test_without_imm_region_imm_is_in_the_function_region(routes, invoke, emu, fn_env):
    fn_env.delenv("IMM_REGION")
    result = imm_only(invoke, emu, fn_env)
    assert [r["status"] for r in result["results"]] == ["updated"]
    assert hosts(routes, "imm") == {f"imm.{FUNCTION_REGION}.aliyuncs.com"}


# -- the local tools: their stand-in context gives the function a region of its own --------------------------------
def test_the_local_tools_run_the_function_in_fc_region_else_imm_region():
    from devtools.target import local_region

    assert local_region({}) == "cn-hangzhou"
    assert local_region({"IMM_REGION": IMM_REGION}) == IMM_REGION  # one region for everything, as before
    assert local_region({"IMM_REGION": IMM_REGION, "FC_REGION": FUNCTION_REGION}) == FUNCTION_REGION
    assert local_region({"IMM_REGION": " ", "FC_REGION": ""}) == "cn-hangzhou"


def test_dev_invoke_against_the_emulator_reads_the_config_object_in_its_region_whatever_fc_region_says():
    """The emulator is one region: `dev.py invoke` puts the function (FC_REGION) and IMM (IMM_REGION) both there,
    so a config object is read with the emulator's signing region even when the shell has another FC_REGION."""
    from tests.tools import run_tool

    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "WORK_QUEUE", "FANOUT_", "FC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    args = ("examples/timer-config-object.json", "--upload-object", "examples/schedule-nightly.json")
    proc = run_tool("devtools.invoke", *args, env={**env, "FC_REGION": IMM_REGION})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("result:\n", 1)[1].split("emulator batches", 1)[0])
    assert result["results"] and {r["status"] for r in result["results"]} == {"dry_run"}  # read, and applied


# -- a separately started emulator (`python3 dev.py emulator`): the environment its banner prints ------------------
def banner_exports(emu) -> dict[str, str]:
    """What `export`ing the lines the emulator's banner prints sets (comments dropped)."""
    from emulator.__main__ import banner

    exported: dict[str, str] = {}
    for line in banner(emu).splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["export"]:
            for word in words[1:]:
                name, _, value = word.partition("=")
                exported[name] = value
    return exported


def test_the_emulator_banner_puts_the_function_in_the_emulators_region(emu, fn_env, invoke):
    """The banner says it points the function at the emulator: with its exports and a context without a region
    (any of its attributes may be missing), a config object is read there, in the emulator's region. Before, the
    banner exported IMM_REGION only, which no longer gives the function its own region: 'no OSS region'."""
    for name, value in banner_exports(emu).items():
        fn_env.setenv(name, value)
    emu.keyring.add(invoke.sts.access_key_id, invoke.sts.access_key_secret, invoke.sts.security_token)
    emu.oss.create_bucket(BUCKET)
    emu.oss.put_object(BUCKET, KEY, json.dumps({"ProjectName": PROJECT, "Id": READY, **TAGS}).encode())
    context = fc_context(invoke.sts)
    context.region = None
    result = invoke.direct({"Source": f"oss://{BUCKET}/{KEY}"}, context=context)
    assert [r["status"] for r in result["results"]] == ["updated"], result


def test_dev_invoke_on_a_separate_emulator_with_another_fc_region_in_the_shell():
    """`python3 dev.py emulator`, its banner's exports, then `dev.py invoke` of a timer naming a config object in
    it, from a shell that has another FC_REGION: the object is read in the emulator's region (OSS refuses a V4
    signature scoped to another region), as before the split, when IMM_REGION (exported) took priority."""
    from emulator import Emulator
    from tests.tools import run_tool

    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "WORK_QUEUE", "FANOUT_", "FC_")
    with Emulator(seed="demo") as separate:
        separate.oss.create_bucket("my-imm-update-documents")
        document = pathlib.Path(context_module.__file__).parents[1] / "examples" / "schedule-nightly.json"
        separate.oss.put_object("my-imm-update-documents", "schedules/nightly.json", document.read_bytes())
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update({"FC_REGION": IMM_REGION, **banner_exports(separate)})
        proc = run_tool("devtools.invoke", "examples/timer-config-object.json", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("result:\n", 1)[1])
    assert result["results"] and {r["status"] for r in result["results"]} == {"dry_run"}, result


# -- dev.py pump names the IMM the function calls ------------------------------------------------------------------
@pytest.mark.parametrize(
    "env",
    [
        {"FC_REGION": "cn-shanghai"},  # no IMM_REGION: IMM is in the function's region, which the pump gives as FC's
        {"FC_REGION": "cn-shanghai", "IMM_REGION": IMM_REGION},
        {"IMM_REGION": IMM_REGION},
        {},
        {"FC_REGION": "cn-shanghai", "IMM_NETWORK": "vpc"},
    ],
)
def test_the_pump_names_the_imm_host_the_function_calls(env, monkeypatch):
    """`dev.py pump` on a queue that is not local: its first line names IMM's host, the one the function computes
    from the context the pump gives it (context.region: FC_REGION, else IMM_REGION) and IMM_REGION."""
    from devtools import pump
    from imm_batch_updater.config import Settings
    from imm_batch_updater.context import InvocationContext

    for name in ("IMM_ENDPOINT", "IMM_REGION", "FC_REGION", "IMM_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ctx = InvocationContext(pump.fc_context(pump.Key("ak", "secret")), Settings.from_env())
    settings = ctx.settings
    computed = app_module._imm_endpoint(None, settings.imm_protocol, ctx.imm_region, settings.imm_network)
    assert pump.imm_description(None).startswith(f"{computed.host} ")
