"""s.yaml: valid for the fc3 component's props schema (tests/deploy/fc3-schema.json, copied from devsapp/fc3), and
configured the way docs/deploy.md and the function expect."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "fc3-schema.json").read_text())
ACCOUNT_ID = "1234567890"
CONFIG_TYPES = {
    "http": "IHttpTriggerConfig",
    "oss": "IOssTriggerConfig",
    "timer": "ITimerTriggerConfig",
    "mns_topic": "IMnsTriggerConfig",
    "eventbridge": "IEventBridge",
}
_MAGIC = re.compile(r"\$\{([^}]*)\}")


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """Serverless Devs' magic variables as far as s.yaml uses them: ${vars.x}, ${config('AccountID')}, ${env('X')}
    (an environment variable becomes the marker `<env:X>`). Anything else is left as is and fails the checks."""
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("vars.") and expr[5:] in variables:
            return str(variables[expr[5:]])
        if expr == "config('AccountID')":
            return ACCOUNT_ID
        env = re.fullmatch(r"env\('([A-Z0-9_]+)'\)", expr)
        if env:
            return f"<env:{env.group(1)}>"
        return match.group(0)

    return _MAGIC.sub(one, value)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "s.yaml").read_text())


@pytest.fixture(scope="module")
def raw_props(spec) -> dict[str, Any]:
    [resource] = spec["resources"].values()
    return resource["props"]


@pytest.fixture(scope="module")
def props(spec, raw_props) -> dict[str, Any]:
    return resolve(raw_props, spec.get("vars", {}))


@pytest.fixture(scope="module")
def triggers(props) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for trigger in props["triggers"]:
        assert trigger["triggerType"] not in found, "one trigger per type"
        found[trigger["triggerType"]] = trigger
    return found


def validator_for(definition: str | None = None) -> jsonschema.Draft7Validator:
    schema = (
        SCHEMA if definition is None else {"$ref": f"#/definitions/{definition}", "definitions": SCHEMA["definitions"]}
    )
    return jsonschema.Draft7Validator(schema)


def test_edition_and_component(spec):
    assert spec["edition"] == "3.0.0"
    [resource] = spec["resources"].values()
    assert resource["component"] == "fc3"


def test_props_are_valid_for_the_fc3_schema(props):
    errors = sorted(validator_for().iter_errors(props), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_each_trigger_config_matches_its_own_type(triggers):
    # The fc3 schema accepts any trigger config shape for any type (anyOf): check each against its own type.
    for kind, trigger in triggers.items():
        errors = list(validator_for(CONFIG_TYPES[kind]).iter_errors(trigger["triggerConfig"]))
        assert not errors, f"{kind}: " + "; ".join(e.message for e in errors)


def test_the_validation_catches_mistakes(props):
    broken = json.loads(json.dumps(props))
    broken["timeout"] = "60"
    broken["triggers"][0]["triggerType"] = "websocket"
    broken["environmentVariables"]["IMM_MAX_ATTEMPTS"] = 4
    assert len(list(validator_for().iter_errors(broken))) >= 3


def test_no_unresolved_placeholders(props):
    text = json.dumps(props)
    assert "${" not in text, _MAGIC.findall(text)


def test_function_basics(props):
    assert props["runtime"] == "python3.10"
    assert props["handler"] == "handler.handler"
    assert (ROOT / "handler.py").is_file()
    assert isinstance(props["timeout"], int) and 10 <= props["timeout"] <= 600  # explicit: fc3's default is 3 s
    assert isinstance(props["memorySize"], int) and props["memorySize"] >= 256
    assert props["role"] == f"acs:ram::{ACCOUNT_ID}:role/imm-batch-updater-fc"
    assert "instanceConcurrency" not in props  # not supported by built-in runtimes on FC 3.0


def test_log_config_keeps_one_json_line_per_entry(props):
    log = props["logConfig"]
    assert isinstance(log, dict) and log["logBeginRule"] == "None"
    assert log["project"] and log["logstore"]


def test_environment(props, raw_props):
    env = props["environmentVariables"]
    assert all(isinstance(v, str) for v in env.values())
    assert len(json.dumps(env)) < 4096  # FC limit on environment variables
    assert not any(k.startswith("FC_") for k in env)  # reserved prefix
    assert env["HTTP_AUTH"] == "webhook"
    assert raw_props["environmentVariables"]["WEBHOOK_SECRET"] == "${env('WEBHOOK_SECRET')}"
    for name, value in env.items():
        if "SECRET" in name or "TOKEN" in name or "KEY" in name:
            assert value.startswith("<env:"), f"{name} must come from ${{env(...)}}, not s.yaml"
    assert env["PYTHONPATH"] == "/code/python"  # where `s build` installs requirements.txt


def test_environment_names_are_documented(props):
    docs = (ROOT / "docs" / "deploy.md").read_text() + (ROOT / "README.md").read_text()
    for name in props["environmentVariables"]:
        assert f"`{name}`" in docs, f"{name} is not documented"


def test_sink_variables_read_by_the_code_are_documented():
    sources = [ROOT / "imm_batch_updater" / "config.py", *sorted((ROOT / "imm_batch_updater" / "sinks").glob("*.py"))]
    names = {n for path in sources for n in re.findall(r'"((?:RESULT|TRIGGER)_[A-Z_]+)"', path.read_text())}
    assert {"RESULT_MNS_TOPIC", "RESULT_WEBHOOK_URL", "RESULT_FC_FUNCTION", "TRIGGER_MNS_TOPICS"} <= names
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name in names:
        assert f"`{name}`" in docs, f"{name} is not documented in docs/deploy.md"


def test_http_trigger(triggers):
    config = triggers["http"]["triggerConfig"]
    assert config["authType"] == "anonymous"  # authenticated in code: Standard Webhooks
    assert set(config["methods"]) == {"POST", "GET", "HEAD"}  # HEAD: README, /healthz and /schema


def test_mns_topic_trigger(triggers, props):
    trigger = triggers["mns_topic"]
    assert trigger["triggerConfig"]["notifyContentFormat"] == "JSON"
    assert re.fullmatch(rf"acs:mns:{props['region']}:{ACCOUNT_ID}:/topics/[\w-]+", trigger["sourceArn"])


def test_mns_queue_trigger_is_eventbridge_batch_push(triggers, props):
    config = triggers["eventbridge"]["triggerConfig"]
    source = config["eventSourceConfig"]
    assert source["eventSourceType"] == "MNS"
    assert source["eventSourceParameters"]["sourceMNSParameters"]["QueueName"]
    assert config["runOptions"]["mode"] == "event-streaming"  # the function gets a JSON array
    assert config["runOptions"]["batchWindow"]["CountBasedWindow"] > 1
    assert config["eventSinkConfig"]["deliveryOption"]["mode"] == "event-streaming"
    trigger_name = triggers["eventbridge"]["triggerName"]
    assert json.loads(config["eventRuleFilterPattern"]) == {"source": [f"MNS-{props['functionName']}-{trigger_name}"]}


def test_oss_trigger_filters_update_documents(triggers):
    from imm_batch_updater.sources.oss import FINISHED_OBJECT_EVENTS

    config = triggers["oss"]["triggerConfig"]
    assert config["filter"]["key"] == {"prefix": "updates/", "suffix": ".json"}
    # Subscribed to exactly the events the function reads: none it would ignore, none it reads left out.
    assert sorted(config["events"]) == sorted(f"oss:{e}" for e in FINISHED_OBJECT_EVENTS)


def test_the_imm_load_is_bounded_by_reserved_concurrency_times_imm_max_qps(props):
    """Fan-out spreads a selection over instances: the deployed function bounds its total IMM calls/s by FC's
    reserved concurrency (one invocation per instance) times the per-instance IMM_MAX_QPS (README "Fleet updates")."""
    reserved = props["concurrencyConfig"]["reservedConcurrency"]
    assert type(reserved) is int and reserved >= 1  # the FC API takes an integer, not a string
    assert props.get("instanceConcurrency", 1) == 1  # one invocation per instance: instances = invocations
    qps = props["environmentVariables"]["IMM_MAX_QPS"]
    assert isinstance(qps, str) and float(qps) > 0  # FC's environment variables are strings
    docs = (ROOT / "docs" / "deploy.md").read_text()
    per_instance = int(float(qps))
    assert f"{reserved} × {per_instance} = {reserved * per_instance} IMM calls per second" in docs.replace("\n", " ")
    assert f"`concurrencyConfig.reservedConcurrency: {reserved}`" in docs and f"`IMM_MAX_QPS: '{qps}'`" in docs


def test_the_timer_applies_a_config_object_outside_the_trigger_prefix(triggers, raw_props, spec):
    """The nightly schedule lives in OSS (a config object: README "Fleet updates"), named by vars.timerPayload, and
    the sample to upload there is a valid dry run; the object is outside the OSS trigger's prefix (uploading it must
    not fire the trigger) and the role may read it."""
    [raw] = [t for t in raw_props["triggers"] if t["triggerType"] == "timer"]
    assert raw["triggerConfig"]["payload"] == "${vars.timerPayload}"
    assert raw["triggerConfig"]["cronExpression"] == "${vars.timerSchedule}"
    config = triggers["timer"]["triggerConfig"]
    payload = json.loads(config["payload"])
    assert list(payload) == ["Source"]
    bucket, key = payload["Source"].removeprefix("oss://").split("/", 1)
    assert bucket == spec["vars"]["triggerBucket"] and not key.startswith(spec["vars"]["triggerPrefix"])
    from imm_batch_updater.sources.config_object import SOURCE

    assert SOURCE.fullmatch(payload["Source"])
    sample = json.loads((ROOT / "examples" / "schedule-nightly.json").read_text())
    schema = json.loads((ROOT / "schema" / "update-request.schema.json").read_text())
    for document in sample if isinstance(sample, list) else [sample]:
        jsonschema.Draft202012Validator(schema).validate(document)
        assert document.get("DryRun") is True
        # Narrowed by a tag as docs/deploy.md says: a sample without DryRun must not change every Failed batch.
        assert document["Selector"]["TagSelector"] == "pipeline=nightly"
        assert "tagged `pipeline=nightly`" in (ROOT / "docs" / "deploy.md").read_text()
    policy = json.loads((ROOT / "deploy" / "ram-policy.json").read_text())
    [read] = [s for s in policy["Statement"] if s["Sid"] == "ReadSchedule"]
    assert read["Action"] == ["oss:GetObject"]
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "`timerPayload`" in docs and "`timerSchedule`" in docs
    for text in (docs, (ROOT / "s.yaml").read_text(), (ROOT / "README.md").read_text()):
        assert "batch-nightly" not in text


def test_async_invoke_config_has_an_mns_queue_on_failure(props):
    config = props["asyncInvokeConfig"]
    assert 0 < config["maxAsyncRetryAttempts"] <= 8
    destination = config["destinationConfig"]["onFailure"]["destination"]
    assert re.fullmatch(rf"acs:mns:{props['region']}::/queues/[\w-]+/messages", destination)


def queue_of(arn: str) -> str:
    return arn.split("/queues/", 1)[1].split("/", 1)[0]


def test_no_loops(props, triggers):
    env = props["environmentVariables"]
    trigger_topic = triggers["mns_topic"]["sourceArn"].split("/topics/", 1)[1]
    assert trigger_topic in env["TRIGGER_MNS_TOPICS"].replace(",", " ").split()
    assert env["RESULT_MNS_TOPIC"] != trigger_topic
    trigger_queue = triggers["eventbridge"]["triggerConfig"]["eventSourceConfig"]["eventSourceParameters"][
        "sourceMNSParameters"
    ]["QueueName"]
    on_failure = props["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    assert queue_of(on_failure) != trigger_queue
    dead_letters = triggers["eventbridge"]["triggerConfig"]["runOptions"]["deadLetterQueue"]["Arn"]
    assert queue_of(dead_letters) != trigger_queue
    assert env.get("RESULT_FC_FUNCTION") != props["functionName"]


def test_the_function_accepts_this_configuration(props):
    """The sinks s.yaml configures are built, not refused, and the work queue is the function's own queue trigger."""
    from types import SimpleNamespace

    from imm_batch_updater.config import Settings
    from imm_batch_updater.context import InvocationContext
    from imm_batch_updater.sinks import configured_sinks

    settings = Settings.from_env(props["environmentVariables"])
    context = SimpleNamespace(
        account_id=ACCOUNT_ID,
        region=props["region"],
        request_id="r",
        function=SimpleNamespace(name=props["functionName"], timeout=props["timeout"]),
    )
    assert [s.name for s in configured_sinks(InvocationContext(context, settings))] == ["mns_topic"]


def test_large_selections_fan_out_to_the_queue_trigger(props, triggers):
    """WORK_QUEUE is the queue that triggers the function (README "Fleet updates"), granted in the RAM policy."""
    env = props["environmentVariables"]
    source = triggers["eventbridge"]["triggerConfig"]["eventSourceConfig"]["eventSourceParameters"]
    assert env["WORK_QUEUE"] == source["sourceMNSParameters"]["QueueName"]
    assert int(env["FANOUT_BATCHES"]) >= 1
    policy = json.loads((ROOT / "deploy" / "ram-policy.json").read_text())
    [statement] = [s for s in policy["Statement"] if s["Sid"] == "FanOutToWorkQueue"]
    assert statement["Action"] == ["mns:SendMessage", "mns:BatchSendMessage"]
    assert statement["Resource"] == ["acs:mns:{region}:{account_id}:/queues/{work_queue}/messages"]


def test_mns_queue_dead_letters_under_either_reading_of_async_invocation_type(props, triggers):
    """FC's documents disagree on whether asyncInvocationType false is synchronous or asynchronous: both failure paths
    are configured and lead to the same dead-letter queue, and docs/deploy.md says which retry and limit apply."""
    config = triggers["eventbridge"]["triggerConfig"]
    assert isinstance(config["asyncInvocationType"], bool)
    run = config["runOptions"]  # synchronous: EventBridge retries, then its dead-letter queue
    assert run["retryStrategy"]["PushRetryStrategy"] in ("BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY")
    assert run["errorsTolerance"] == "ALL"  # skip to the dead-letter queue instead of blocking the queue
    eventbridge_dlq = run["deadLetterQueue"]["Arn"]
    assert re.fullmatch(rf"acs:mns:{props['region']}:{ACCOUNT_ID}:/queues/[\w-]+", eventbridge_dlq)
    async_config = props["asyncInvokeConfig"]  # asynchronous: FC retries, then onFailure
    assert async_config["maxAsyncRetryAttempts"] >= 1 and async_config["maxAsyncEventAgeInSeconds"] >= 60
    on_failure = async_config["destinationConfig"]["onFailure"]["destination"]
    assert queue_of(on_failure) == queue_of(eventbridge_dlq)
    docs = (ROOT / "docs" / "deploy.md").read_text()
    section = docs.split("either invocation mode", 1)[1].split("\n## ", 1)[0]
    for fact in (
        "asyncInvocationType",
        "BACKOFF_RETRY",
        "maxAsyncRetryAttempts",
        "32 MB",
        "128 KB",
        "deadLetterQueue",
        "onFailure",
        "synchronous",
        "asynchronous",
    ):
        assert fact in section, fact


def test_python310_everywhere_the_deployment_is_described(props):
    """The runtime is python3.10 in s.yaml, the deploy guide and the README's deploy section, and the lock is
    compiled for it."""
    assert props["runtime"] == "python3.10"
    readme = (ROOT / "README.md").read_text()
    deploying = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    for text in ((ROOT / "docs" / "deploy.md").read_text(), deploying, (ROOT / "s.yaml").read_text()):
        assert set(re.findall(r"python3\.\d+", text)) <= {"python3.10"}
    assert "python3.10" in deploying


def test_the_readme_deploy_block_passes_the_webhook_secret(raw_props):
    readme = (ROOT / "README.md").read_text()
    deploying = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    block = deploying.split("```bash", 1)[1].split("```", 1)[0]
    assert "WEBHOOK_SECRET" in block and "s deploy" in block and "s build" in block
    assert block.index("WEBHOOK_SECRET") < block.index("s deploy")
    assert raw_props["environmentVariables"]["WEBHOOK_SECRET"] == "${env('WEBHOOK_SECRET')}"


def test_the_documented_eventbridge_oss_trigger_is_valid_for_fc3(spec):
    """docs/deploy.md 9 shows an EventBridge-based OSS trigger that s.yaml does not declare: it must still be one fc3
    takes, with the event pattern the function expects (acs.oss finished objects, CloudEvents, one per invocation)."""
    docs = (ROOT / "docs" / "deploy.md").read_text()
    section = docs.split("**The EventBridge-based OSS trigger (not deployed here).**", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    [trigger] = resolve(yaml.safe_load(block), spec.get("vars", {}))
    assert not list(validator_for("ITrigger").iter_errors(trigger))
    config = trigger["triggerConfig"]
    assert not list(validator_for(CONFIG_TYPES["eventbridge"]).iter_errors(config))
    assert config["eventSourceConfig"]["eventSourceType"] == "Default"
    assert config["eventSinkConfig"]["deliveryOption"]["eventSchema"] == "CloudEvents"
    pattern = json.loads(config["eventRuleFilterPattern"])
    assert pattern["source"] == ["acs.oss"]
    assert pattern["type"] == [
        f"oss:ObjectCreated:{n}" for n in ("PutObject", "PostObject", "CopyObject", "CompleteMultipartUpload")
    ]
    prefix = (
        f"acs:oss:{spec['vars']['region']}:{ACCOUNT_ID}:{spec['vars']['triggerBucket']}/{spec['vars']['triggerPrefix']}"
    )
    assert pattern["subject"] == [{"prefix": prefix}]
