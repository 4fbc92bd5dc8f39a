"""Sink wiring: which sinks the environment configures, the outcome filter, failure isolation, lazy SDK imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from standardwebhooks.webhooks import Webhook

from imm_batch_updater.config import SINK_FILTERS, Settings
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.outcome import Status as oc
from imm_batch_updater.sinks import configured_sinks
from imm_batch_updater.sinks.base import select
from tests.conftest import PROJECT, READY, ROOT, RUNNING, new_secret
from tests.sinks.conftest import Reply, log_records, messages

TAGS = {"Tags": {"owner": "media-team"}}
ALL_STATUSES = [oc.UPDATED, oc.DRY_RUN, oc.INVALID, oc.NOT_FOUND, oc.CONFLICT, oc.REJECTED, oc.THROTTLED, oc.FAILED]
DEAD_LETTERS = {oc.INVALID, oc.NOT_FOUND, oc.CONFLICT, oc.REJECTED}


def ctx():
    return SimpleNamespace(
        settings=Settings.current(), account_id="1", region="cn-hangzhou", request_id="r", function_name="f"
    )


def test_no_configuration_no_sinks(monkeypatch):
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    assert Settings.current().sinks == () and configured_sinks(ctx()) == []


def test_each_variable_enables_its_sink(monkeypatch):
    monkeypatch.setenv("RESULT_MNS_TOPIC", "results")
    monkeypatch.setenv("RESULT_WEBHOOK_URL", "https://example.com/hook")
    monkeypatch.setenv("RESULT_WEBHOOK_SECRET", new_secret())
    monkeypatch.setenv("RESULT_FC_FUNCTION", "other-function")
    assert [s.name for s in configured_sinks(ctx())] == ["mns_topic", "webhook", "fc_function"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("all", set(ALL_STATUSES)),
        ("failures", set(ALL_STATUSES) - {oc.UPDATED, oc.DRY_RUN}),
        ("dead_letters", DEAD_LETTERS),
    ],
)
def test_filter_modes(mode, expected):
    outcomes = [Outcome(status=s) for s in ALL_STATUSES]
    assert {o.status for o in select(outcomes, mode)} == expected


def test_every_filter_mode_sends_the_dead_letters():
    outcomes = [Outcome(status=s) for s in ALL_STATUSES]
    for mode in SINK_FILTERS:
        assert DEAD_LETTERS <= {o.status for o in select(outcomes, mode)}, mode


def test_an_unknown_filter_falls_back_to_all_with_a_warning():
    settings = Settings.from_env(
        {"RESULT_SINK_FILTER": "only-good-news", "RESULT_MNS_TOPIC": "t", "RESULT_MNS_FILTER": "bogus"}
    )
    [mns] = settings.sinks
    assert settings.sink_filter == "all" and (mns.filter or settings.sink_filter) == "all"
    assert len(settings.warnings) == 2 and any("RESULT_SINK_FILTER" in w for w in settings.warnings)


@pytest.mark.parametrize(
    ("enable", "variable"),
    [
        ({"RESULT_MNS_TOPIC": "t"}, "RESULT_MNS_FILTER"),
        ({"RESULT_WEBHOOK_URL": "https://example.com/h"}, "RESULT_WEBHOOK_FILTER"),
        ({"RESULT_FC_FUNCTION": "other"}, "RESULT_FC_FILTER"),
    ],
)
def test_an_unknown_per_sink_filter_falls_back_to_result_sink_filter(enable, variable):
    # A per-sink filter's default is RESULT_SINK_FILTER (README, docs/deploy.md 13), and a malformed value falls back
    # to the default: a typo must not widen a sink from dead letters to every outcome.
    settings = Settings.from_env({"RESULT_SINK_FILTER": "dead_letters", variable: "dead-leters", **enable})
    [sink] = settings.sinks
    assert (sink.filter or settings.sink_filter) == "dead_letters"
    [warning] = settings.warnings
    assert variable in warning and "using RESULT_SINK_FILTER" in warning


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"RESULT_SINK_TIMEOUT_MS": "abc"}, "sink_timeout_ms", 5000),
        ({"RESULT_SINK_TIMEOUT_MS": "5"}, "sink_timeout_ms", 5000),
        ({"RESULT_SINK_TIMEOUT_MS": "1500"}, "sink_timeout_ms", 1500),
        ({"RESULT_SINK_ATTEMPTS": "9"}, "sink_attempts", 2),
        ({"RESULT_SINK_ATTEMPTS": "3"}, "sink_attempts", 3),
        ({"TRIGGER_MNS_TOPICS": "a, acs:mns:r:1:/topics/b/messages c"}, "trigger_mns_topics", ("a", "b", "c")),
    ],
)
def test_settings(env, field, value):
    assert getattr(Settings.from_env(env), field) == value


def test_settings_repr_hides_secrets():
    secret = new_secret()
    settings = Settings.from_env(
        {"RESULT_WEBHOOK_URL": "https://x/h", "RESULT_WEBHOOK_SECRET": secret, "WEBHOOK_SECRET": secret}
    )
    assert secret not in repr(settings)


def test_a_failing_sink_does_not_stop_the_others(fn_env, invoke, emu, receiver, capsys):
    secret = new_secret()
    emu.mns.create_topic("results")
    fn_env.setenv("RESULT_MNS_TOPIC", "results")
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    fn_env.setenv("RESULT_WEBHOOK_URL", receiver.url)
    fn_env.setenv("RESULT_WEBHOOK_SECRET", secret)
    fn_env.setenv("RESULT_FC_FUNCTION", "other-function")
    fn_env.setenv("RESULT_FC_ENDPOINT", receiver.url)
    emu.faults.inject("PublishMessage", "unavailable", count=None)  # MNS down
    receiver.default = Reply(202)
    result = invoke.direct([{"ProjectName": PROJECT, "Id": READY, **TAGS}, {"ProjectName": PROJECT, "Id": RUNNING}])
    assert [r["status"] for r in result["results"]] == ["updated", "invalid"]
    hook, fc = receiver.requests  # webhook first, then the FC invocation: both delivered
    Webhook(secret).verify(hook.body.decode(), hook.headers)
    assert fc.path == "/2023-03-30/functions/other-function/invocations"
    records = log_records(capsys)
    assert [r["status"] for r in messages(records, "outcome")] == ["updated", "invalid"]
    assert [r["sink"] for r in messages(records, "sink failed")] == ["mns_topic"]


def test_an_unexpected_sink_error_is_contained(fn_env, invoke, emu, capsys, sts, monkeypatch):
    emu.mns.create_topic("results")
    fn_env.setenv("RESULT_MNS_TOPIC", "results")
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    from imm_batch_updater.sinks import mns_topic

    def broken(self, outcomes, invocation, duration_ms):
        raise RuntimeError("bug")

    monkeypatch.setattr(mns_topic.MnsTopicSink, "emit", broken)
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY, **TAGS})
    assert result["results"][0]["status"] == "updated"
    records = log_records(capsys)
    assert messages(records, "outcome") and messages(records, "sink failed")[0]["error_type"] == "RuntimeError"


def test_missing_credentials_fail_the_sink_only(fn_env, invoke, emu, capsys, monkeypatch):
    emu.mns.create_topic("results")
    fn_env.setenv("RESULT_MNS_TOPIC", "results")
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    from imm_batch_updater import credentials

    def unavailable(context):
        raise credentials.CredentialsUnavailable("no credentials")

    monkeypatch.setattr(credentials, "resolve", unavailable)
    result = invoke.direct({"ProjectName": PROJECT, "Id": READY})  # invalid (no change): IMM is not called
    assert result["results"][0]["status"] == "invalid"
    records = log_records(capsys)
    assert len(messages(records, "outcome")) == 1
    assert [r["error_type"] for r in messages(records, "sink failed")] == ["CredentialsUnavailable"]
    assert emu.calls(action="PublishMessage") == []


def test_sdks_are_imported_only_by_configured_sinks(tmp_path):
    """Cold start: with no sink configured, neither the MNS nor the FC SDKs are loaded."""
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import handler
from types import SimpleNamespace
ctx = SimpleNamespace(request_id="r", credentials=None, function=SimpleNamespace(name="f", timeout=10),
                      region="cn-hangzhou", account_id="1")
handler.handler(b'{{"Id": 1}}', ctx)
print(json.dumps(sorted(m for m in ("mns", "fc2", "alibabacloud_fc20230330") if m in sys.modules)))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESULT_", "ALIBABA_CLOUD_"))}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_each_sink_entry_names_its_modules_first_variable():
    """A sink's module is imported only when its first variable is set: the entry must name that variable."""
    from imm_batch_updater.sinks import SINKS

    for entry in SINKS:
        module = entry.load()
        assert module.name == entry.name and module.variables[0] == entry.enabled_by
