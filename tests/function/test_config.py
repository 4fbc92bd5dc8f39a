"""Settings from the environment: endpoints, defaults, and fallbacks for malformed values."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imm_batch_updater.app import _imm_endpoint
from imm_batch_updater.config import Settings
from imm_batch_updater.context import EndpointUnknown, endpoint


def imm_endpoint(env: dict[str, str], region: str | None) -> str:
    """IMM's endpoint as the function computes it (app._imm_endpoint), for IMM's region `region`."""
    s = Settings.from_env(env)
    return _imm_endpoint(s.imm_endpoint, s.imm_protocol, region, s.imm_network).url


def test_endpoint_from_region_public_and_vpc():
    assert imm_endpoint({}, "cn-shanghai") == "https://imm.cn-shanghai.aliyuncs.com"
    assert imm_endpoint({"IMM_NETWORK": "vpc"}, "cn-shanghai") == "https://imm-vpc.cn-shanghai.aliyuncs.com"
    assert imm_endpoint({"IMM_ENDPOINT": "127.0.0.1:9100", "IMM_PROTOCOL": "http"}, "x") == "http://127.0.0.1:9100"
    assert imm_endpoint({"IMM_ENDPOINT": "http://127.0.0.1:9100"}, None) == "http://127.0.0.1:9100"
    with pytest.raises(EndpointUnknown, match="IMM_ENDPOINT or IMM_REGION"):
        imm_endpoint({}, None)


def test_region_order():
    """The function's region is the context's, then FC_REGION; IMM_REGION is IMM's alone (then the function's)."""
    env = {"FC_REGION": "cn-beijing"}
    imm_elsewhere = Settings.from_env({**env, "IMM_REGION": "eu-central-1"})
    assert imm_elsewhere.function_region("cn-hangzhou") == "cn-hangzhou"
    assert imm_elsewhere.function_region(None) == "cn-beijing"
    assert imm_elsewhere.imm_region_for("cn-hangzhou") == "eu-central-1"
    assert Settings.from_env(env).function_region("cn-hangzhou") == "cn-hangzhou"
    assert Settings.from_env(env).function_region(None) == "cn-beijing"
    assert Settings.from_env(env).imm_region_for("cn-hangzhou") == "cn-hangzhou"
    assert Settings.from_env({}).imm_region_for(None) is None


def test_vpc_endpoints_with_imm_in_another_region_warn_once():
    """IMM_NETWORK=vpc picks imm-vpc.{IMM_REGION}, reachable only from that region's VPCs: with IMM elsewhere than the
    function (FC_REGION), that is said; the function's own OSS, MNS and FC keep their internal endpoints."""
    env = {"IMM_NETWORK": "vpc", "IMM_REGION": "cn-shanghai", "FC_REGION": "cn-hangzhou"}
    [warning] = Settings.from_env(env).warnings
    assert "imm-vpc.cn-shanghai.aliyuncs.com" in warning and "IMM_ENDPOINT" in warning
    assert Settings.from_env(env).imm_network == "vpc"  # kept: the function's own endpoints stay internal
    assert Settings.from_env({**env, "IMM_ENDPOINT": "imm.cn-shanghai.aliyuncs.com"}).warnings == ()
    assert Settings.from_env({**env, "IMM_REGION": "CN-Hangzhou"}).warnings == ()
    assert Settings.from_env({**env, "IMM_NETWORK": "public"}).warnings == ()
    assert Settings.from_env({"IMM_NETWORK": "vpc", "IMM_REGION": "cn-shanghai"}).warnings == ()  # FC_REGION unknown


def test_defaults():
    s = Settings.from_env({})
    assert (s.imm_protocol, s.imm_precheck, s.http_auth, s.max_attempts) == ("https", True, "webhook", 4)
    assert s.webhook_secrets == () and s.max_documents == 100 and s.max_body_bytes == 1024 * 1024
    # Fleet updates (pinned): no pacing unless IMM_MAX_QPS is set; selections over 100 batches fan out.
    assert s.imm_max_qps == 0 and s.fanout_batches == 100 and s.work_queue is None and s.imm_network is None


def test_imm_network_is_public_or_vpc_and_a_typo_warns():
    assert Settings.from_env({"IMM_NETWORK": "VPC"}).imm_network == "vpc"
    assert Settings.from_env({"IMM_NETWORK": "public"}).imm_network is None
    s = Settings.from_env({"IMM_NETWORK": "vcp"})
    assert s.imm_network is None and s.warnings == ("IMM_NETWORK must be one of public, vpc; using public",)


def test_malformed_values_fall_back_with_a_warning():
    s = Settings.from_env(
        {"IMM_MAX_ATTEMPTS": "many", "IMM_PROTOCOL": "ftp", "UPDATE_CONCURRENCY": "0", "HTTP_AUTH": "off"}
    )
    assert (s.max_attempts, s.imm_protocol, s.concurrency, s.http_auth) == (4, "https", 8, "webhook")
    assert len(s.warnings) == 4


def test_secrets_are_split_on_whitespace_and_hidden_from_repr():
    a, b = "whsec_" + "A" * 32, "whsec_" + "B" * 32  # 24 bytes each, the Standard Webhooks minimum
    s = Settings.from_env({"WEBHOOK_SECRET": f"{a}  {b}"})
    assert s.webhook_secrets == (a, b) and a not in repr(s) and s.warnings == ()


def test_precheck_false_spellings():
    for value in ("false", "0", "no", "off", "FALSE"):
        assert Settings.from_env({"IMM_PRECHECK": value}).imm_precheck is False


def test_an_unrecognised_precheck_value_keeps_the_default_and_warns():
    s = Settings.from_env({"IMM_PRECHECK": "flase"})
    assert s.imm_precheck is True and s.warnings == ("IMM_PRECHECK must be true or false; using true",)
    assert Settings.from_env({"IMM_PRECHECK": " On "}).imm_precheck is True


def test_settings_are_parsed_once_per_instance_until_reloaded(monkeypatch):
    """FC fixes an instance's environment: parsed once, kept; `reload` (what tests do on every change) re-reads."""
    monkeypatch.setenv("IMM_MAX_ATTEMPTS", "3")
    first = Settings.current()
    assert Settings.current() is first and first.max_attempts == 3
    import os

    os.environ["IMM_MAX_ATTEMPTS"] = "5"  # behind the instance's back: not seen until reloaded
    try:
        assert Settings.current() is first
        Settings.reload()
        assert Settings.current().max_attempts == 5
    finally:
        monkeypatch.delenv("IMM_MAX_ATTEMPTS")
    assert Settings.current().max_attempts == 4


def test_every_variable_the_code_reads_is_documented_in_the_readme():
    """Each environment variable the package reads (through `Settings` or a sink's `configure`) has a README row."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    source = "\n".join(p.read_text() for p in (root / "imm_batch_updater").rglob("*.py"))
    read = set(re.findall(r'(?:env\.get|text\(env,|integer)\(?\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= {
        n for v in re.findall(r"variables(?:: [^=]*)? = \(([^)]*)\)", source) for n in re.findall(r'"([A-Z_]+)"', v)
    }
    assert {"IMM_ENDPOINT", "WORK_QUEUE", "IMM_MAX_QPS", "RESULT_MNS_TOPIC", "OSS_MAX_OBJECT_BYTES"} <= read
    readme = (root / "README.md").read_text()
    assert sorted(n for n in read if f"`{n}`" not in readme) == []


@pytest.mark.parametrize("raw", ["0", "lots", "99999999999"])
def test_a_malformed_oss_max_object_bytes_names_its_real_default(raw):
    # Its default is MAX_BODY_BYTES (README "Configuration"): the warning says so, not "using 0".
    s = Settings.from_env({"OSS_MAX_OBJECT_BYTES": raw, "MAX_BODY_BYTES": "2048"})
    assert s.object_limit == 2048
    [warning] = s.warnings
    assert warning.startswith("OSS_MAX_OBJECT_BYTES ") and warning.endswith("; using MAX_BODY_BYTES (2048)")


def test_a_region_that_is_not_a_region_id_names_both_settings_and_never_echoes_it():
    with pytest.raises(EndpointUnknown) as refused:
        _imm_endpoint(None, "https", "cn-hangzhou@evil.example:443#", None)
    text = str(refused.value)
    assert "IMM_REGION" in text and "IMM_ENDPOINT" in text and "evil" not in text
    # What is the function's names the function's region's setting: IMM_REGION would not change it.
    with pytest.raises(EndpointUnknown) as refused:
        endpoint("mns", None, variable="WORK_QUEUE_ENDPOINT", region="cn-hangzhou@evil.example:443#", account="1")
    text = str(refused.value)
    assert "FC_REGION" in text and "WORK_QUEUE_ENDPOINT" in text and "IMM_REGION" not in text and "evil" not in text


# -- IMM_MAX_QPS: no value can stall the calls --------------------------------------------------------------------
class _Clock:
    """A fake monotonic clock whose sleep moves it on, so a pacer's waits are measured, not slept."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@example(1e-300)  # the reported fault: every IMM call after the first stalled
@example(5e-324)  # the smallest subnormal: 1/qps overflows to inf
@example(2.2250738585072014e-308)
@example(0.999)
@example(0.5)
@example(0.01)
@example(0.00999)
@example(1.0)
@example(-1.0)
@example(-0.0)
@example(0.0)
@example(float("inf"))
@example(float("-inf"))
@example(float("nan"))
@example(1e308)
@example(100_000.0)
@example(100_000.5)
@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_no_imm_max_qps_value_can_stall_an_imm_call(value):
    from imm_batch_updater.config import MIN_IMM_MAX_QPS
    from imm_batch_updater.ratelimit import Pacer

    s = Settings.from_env({"IMM_MAX_QPS": repr(value)})
    qps = s.imm_max_qps
    usable = value == 0 or MIN_IMM_MAX_QPS <= value <= 100_000
    # A value outside "0, or MIN_IMM_MAX_QPS to 100,000" is a configuration warning that names the variable.
    assert bool(s.warnings) is not usable
    assert all(w.startswith("IMM_MAX_QPS ") for w in s.warnings)
    assert qps == 0 or MIN_IMM_MAX_QPS <= qps <= 100_000
    if qps == 0:
        return  # no pacing at all
    # Paced: each call after the first goes at most 1/MIN_IMM_MAX_QPS s after the one before (never "after the
    # deadline" for ever, as 1e-300 made every call after an instance's first).
    clock = _Clock()
    pacer = Pacer(qps, clock=clock)
    started = clock.now
    budget = 1.0 / MIN_IMM_MAX_QPS
    for n in range(3):
        assert pacer.acquire(deadline_at=started + n * budget, sleep=clock.sleep), (qps, n)
    assert clock.now - started <= 2 * budget


@pytest.mark.parametrize("raw", ["1e-300", "5e-324", "0.001", "-3", "nan", "inf", "1e400", "lots"])
def test_an_imm_max_qps_that_cannot_work_warns_and_says_what_is_used(raw):
    from imm_batch_updater.config import MIN_IMM_MAX_QPS

    s = Settings.from_env({"IMM_MAX_QPS": raw})
    [warning] = s.warnings
    assert warning.startswith("IMM_MAX_QPS ")
    if raw in ("1e-300", "5e-324", "0.001"):  # a pace slower than the floor: the slowest one the function keeps
        assert s.imm_max_qps == MIN_IMM_MAX_QPS and warning.endswith(f"; using {MIN_IMM_MAX_QPS:g}")
    else:  # not a number, negative, or past 100,000: no limit, as before
        assert s.imm_max_qps == 0 and warning.endswith("; using 0")


@pytest.mark.parametrize("raw", ["0.5", "0.05", "0.01"])
def test_a_slow_imm_max_qps_above_the_floor_is_a_quota_kept_as_given(raw):
    """Half a call a second is a legitimate quota share: raising it would send calls faster than the user allowed."""
    s = Settings.from_env({"IMM_MAX_QPS": raw})
    assert s.imm_max_qps == float(raw) and not s.warnings
