"""Settings from the environment: endpoints, defaults, and fallbacks for malformed values."""

from __future__ import annotations

from imm_batch_updater.config import Settings


def test_endpoint_from_region_public_and_vpc():
    assert Settings.from_env({}).endpoint("cn-shanghai") == "imm.cn-shanghai.aliyuncs.com"
    assert Settings.from_env({"IMM_NETWORK": "vpc"}).endpoint("cn-shanghai") == "imm-vpc.cn-shanghai.aliyuncs.com"
    assert Settings.from_env({"IMM_ENDPOINT": "127.0.0.1:9100"}).endpoint("cn-shanghai") == "127.0.0.1:9100"
    assert Settings.from_env({}).endpoint(None) is None


def test_region_order(monkeypatch):
    monkeypatch.setenv("FC_REGION", "cn-beijing")
    assert Settings.from_env({"IMM_REGION": "eu-central-1"}).region("cn-hangzhou") == "eu-central-1"
    assert Settings.from_env({}).region("cn-hangzhou") == "cn-hangzhou"
    assert Settings.from_env({}).region(None) == "cn-beijing"


def test_defaults():
    s = Settings.from_env({})
    assert (s.imm_protocol, s.imm_precheck, s.http_auth, s.max_attempts) == ("https", True, "webhook", 4)
    assert s.webhook_secrets == () and s.max_documents == 100 and s.max_body_bytes == 1024 * 1024


def test_malformed_values_fall_back_with_a_warning():
    s = Settings.from_env(
        {"IMM_MAX_ATTEMPTS": "many", "IMM_PROTOCOL": "ftp", "UPDATE_CONCURRENCY": "0", "HTTP_AUTH": "off"}
    )
    assert (s.max_attempts, s.imm_protocol, s.concurrency, s.http_auth) == (4, "https", 8, "webhook")
    assert len(s.warnings) == 4


def test_secrets_are_split_on_whitespace_and_hidden_from_repr():
    s = Settings.from_env({"WEBHOOK_SECRET": "whsec_aaaa  whsec_bbbb"})
    assert s.webhook_secrets == ("whsec_aaaa", "whsec_bbbb") and "whsec_aaaa" not in repr(s)


def test_precheck_false_spellings():
    for value in ("false", "0", "no", "off", "FALSE"):
        assert Settings.from_env({"IMM_PRECHECK": value}).imm_precheck is False


def test_an_unrecognised_precheck_value_keeps_the_default_and_warns():
    s = Settings.from_env({"IMM_PRECHECK": "flase"})
    assert s.imm_precheck is True and s.warnings == ("IMM_PRECHECK must be true or false; using true",)
    assert Settings.from_env({"IMM_PRECHECK": " On "}).imm_precheck is True


def test_current_reparses_when_a_variable_changes(monkeypatch):
    monkeypatch.setenv("IMM_MAX_ATTEMPTS", "3")
    first = Settings.current()
    assert Settings.current() is first and first.max_attempts == 3
    monkeypatch.setenv("IMM_MAX_ATTEMPTS", "5")
    assert Settings.current().max_attempts == 5
    monkeypatch.delenv("IMM_MAX_ATTEMPTS")
    assert Settings.current().max_attempts == 4


def test_the_cache_key_covers_every_variable_from_env_reads():
    import re
    from pathlib import Path

    import imm_batch_updater.config as config

    source = Path(config.__file__).read_text()
    read = set(re.findall(r'env\.get\("([A-Z_]+)"\)', source)) | set(re.findall(r'integer\("([A-Z_]+)"', source))
    assert read == {k.decode() for k in config._ENV_KEYS}
