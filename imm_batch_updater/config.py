"""Settings from environment variables, read afresh on every invocation (cheap, and tests can change them).

The pinned variables (see DESIGN.md) keep their names; the others are ours and are documented in the README.
A malformed value never crashes the function: it falls back to the default and is reported once in the log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_TIMEOUT_S = 60.0  # used when the context does not say (local runs)


# Every variable from_env reads (Settings.current re-parses when one of them changes).
_ENV_KEYS = tuple(
    name.encode()
    for name in (
        "IMM_ENDPOINT IMM_PROTOCOL IMM_REGION IMM_NETWORK IMM_PROJECT IMM_PRECHECK HTTP_AUTH WEBHOOK_SECRET "
        "OSS_ENDPOINT IMM_MAX_ATTEMPTS IMM_BACKOFF_BASE_MS IMM_BACKOFF_MAX_MS IMM_CONNECT_TIMEOUT_MS "
        "IMM_READ_TIMEOUT_MS MAX_BODY_BYTES MAX_DOCUMENTS UPDATE_CONCURRENCY "
        "RESULT_MNS_TOPIC RESULT_WEBHOOK_URL RESULT_FC_FUNCTION"
    ).split()
)
_cache: dict[str, tuple[tuple[bytes | None, ...], Settings]] = {}


def env_int(raw: str | None, name: str, default: int, low: int, high: int, warnings: list[str]) -> int:
    """An integer setting in [low, high]; empty means `default`, and a bad value falls back to it with a warning."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        warnings.append(f"{name} is not an integer; using {default}")
        return default
    if not low <= value <= high:
        warnings.append(f"{name} must be between {low} and {high}; using {default}")
        return default
    return value


def env_bool(raw: str | None, name: str, default: bool, warnings: list[str]) -> bool:
    """true/false (also 1/0, yes/no, on/off); empty means `default`, and anything else falls back to it with a
    warning (a typo must not silently turn a safety check off)."""
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    warnings.append(f"{name} must be true or false; using {str(default).lower()}")
    return default


@dataclass(frozen=True)
class Settings:
    imm_endpoint: str | None = None
    imm_protocol: str = "https"
    imm_region: str | None = None
    imm_network: str | None = None
    imm_project: str | None = None
    imm_precheck: bool = True
    http_auth: str = "webhook"
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    oss_endpoint: str | None = None
    max_attempts: int = 4
    backoff_base_ms: int = 200
    backoff_max_ms: int = 5000
    connect_timeout_ms: int = 3000
    read_timeout_ms: int = 10000
    max_body_bytes: int = 1024 * 1024
    max_documents: int = 100
    concurrency: int = 8
    # Is any optional result sink asked for? (sinks.configured reads their settings; most functions have none.)
    result_sinks: bool = False
    warnings: tuple[str, ...] = ()

    @classmethod
    def current(cls) -> Settings:
        """Settings for this invocation: parsed again only when one of our variables changed.

        Reading ~20 variables through `os.environ` costs more than the rest of a warm invocation's own work
        (it encodes every key); the raw bytes mapping behind it answers the same question cheaply.
        """
        raw = getattr(os.environ, "_data", None)
        if not isinstance(raw, dict):  # not CPython's os.environ: just parse
            return cls.from_env()
        key = tuple(map(raw.get, _ENV_KEYS))
        cached = _cache.get("settings")
        if cached is not None and cached[0] == key:
            return cached[1]
        settings = cls.from_env()
        _cache["settings"] = (key, settings)
        return settings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        warnings: list[str] = []

        def integer(name: str, default: int, low: int, high: int) -> int:
            return env_int(env.get(name), name, default, low, high, warnings)

        protocol = (env.get("IMM_PROTOCOL") or "https").strip().lower()
        if protocol not in ("http", "https"):
            warnings.append("IMM_PROTOCOL must be http or https; using https")
            protocol = "https"
        http_auth = (env.get("HTTP_AUTH") or "webhook").strip().lower()
        if http_auth not in ("webhook", "none"):
            # Fail closed: an unknown mode must never open the endpoint.
            warnings.append("HTTP_AUTH must be webhook or none; using webhook")
            http_auth = "webhook"
        return cls(
            imm_endpoint=(env.get("IMM_ENDPOINT") or "").strip() or None,
            imm_protocol=protocol,
            imm_region=(env.get("IMM_REGION") or "").strip() or None,
            imm_network=(env.get("IMM_NETWORK") or "").strip().lower() or None,
            imm_project=(env.get("IMM_PROJECT") or "").strip() or None,
            imm_precheck=env_bool(env.get("IMM_PRECHECK"), "IMM_PRECHECK", True, warnings),
            http_auth=http_auth,
            webhook_secrets=tuple((env.get("WEBHOOK_SECRET") or "").split()),
            oss_endpoint=(env.get("OSS_ENDPOINT") or "").strip() or None,
            max_attempts=integer("IMM_MAX_ATTEMPTS", 4, 1, 20),
            backoff_base_ms=integer("IMM_BACKOFF_BASE_MS", 200, 1, 60_000),
            backoff_max_ms=integer("IMM_BACKOFF_MAX_MS", 5000, 1, 600_000),
            connect_timeout_ms=integer("IMM_CONNECT_TIMEOUT_MS", 3000, 100, 60_000),
            read_timeout_ms=integer("IMM_READ_TIMEOUT_MS", 10000, 100, 600_000),
            max_body_bytes=integer("MAX_BODY_BYTES", 1024 * 1024, 1024, 32 * 1024 * 1024),
            max_documents=integer("MAX_DOCUMENTS", 100, 1, 1000),
            concurrency=integer("UPDATE_CONCURRENCY", 8, 1, 64),
            result_sinks=bool(
                (env.get("RESULT_MNS_TOPIC") or "").strip()
                or (env.get("RESULT_WEBHOOK_URL") or "").strip()
                or (env.get("RESULT_FC_FUNCTION") or "").strip()
            ),
            warnings=tuple(warnings),
        )

    def region(self, context_region: str | None) -> str | None:
        return self.imm_region or context_region or os.environ.get("FC_REGION") or None

    def endpoint(self, region: str | None) -> str | None:
        """IMM host[:port]: IMM_ENDPOINT, else the public or VPC endpoint of the region."""
        if self.imm_endpoint:
            return self.imm_endpoint
        if not region:
            return None
        if self.imm_network == "vpc":
            return f"imm-vpc.{region}.aliyuncs.com"
        return f"imm.{region}.aliyuncs.com"
