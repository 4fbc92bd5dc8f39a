"""Settings: every environment variable the function reads, parsed in one place (`Settings.from_env`).

The pinned variables (README "Configuration" marks them) keep their names; the others are ours; all are
documented in the README. Each optional sink declares its own variables (`sinks.SINKS`); `Settings` holds what
they parsed. A malformed value never crashes the function: it falls back to the default and is reported once in
the log as a `configuration` warning.

FC fixes an instance's environment when it starts (changing a function's variables starts new instances), so the
settings are parsed once per instance and kept (`Settings.current`); `Settings.reload()` forgets them (tests). The
role credentials, which FC may rotate in the environment, are not settings: `credentials` reads them afresh on
every invocation.

    >>> s = Settings.from_env({"IMM_MAX_ATTEMPTS": "6", "UPDATE_CONCURRENCY": "lots"})
    >>> s.max_attempts, s.concurrency, s.warnings
    (6, 8, ('UPDATE_CONCURRENCY is not an integer; using 8',))
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT_S = 60.0  # the function timeout when the context does not say (local runs)
MIN_IMM_MAX_QPS = 0.01  # the slowest IMM_MAX_QPS pace kept: one call every 100 s (README "Configuration")
MAX_IMM_MAX_QPS = 100_000.0


def text(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value with surrounding whitespace removed; None when unset or blank."""
    return (env.get(name) or "").strip() or None


def names(raw: str | None) -> tuple[str, ...]:
    """A list setting: names separated by spaces or commas."""
    return tuple(p for p in (raw or "").replace(",", " ").split() if p)


def env_int(
    raw: str | None, name: str, default: int, low: int, high: int, warnings: list[str], default_text: str = ""
) -> int:
    """An integer setting in [low, high]; empty means `default`, and a bad value falls back to it with a warning
    (which says `default_text`, when given, for what the default stands for)."""
    if raw is None or raw.strip() == "":
        return default
    using = default_text or str(default)
    try:
        value = int(raw)
    except ValueError:
        warnings.append(f"{name} is not an integer; using {using}")
        return default
    if not low <= value <= high:
        warnings.append(f"{name} must be between {low} and {high}; using {using}")
        return default
    return value


def env_float(raw: str | None, name: str, default: float, low: float, high: float, warnings: list[str]) -> float:
    """A number setting in [low, high], like `env_int`."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        warnings.append(f"{name} is not a number; using {default:g}")
        return default
    if not low <= value <= high:  # also refuses nan
        warnings.append(f"{name} must be between {low:g} and {high:g}; using {default:g}")
        return default
    return value


def env_bool(raw: str | None, name: str, default: bool, warnings: list[str]) -> bool:
    """true/false (also 1/0, yes/no, on/off); empty means `default`, anything else falls back to it with a warning
    (a typo must not silently turn a safety check off)."""
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    warnings.append(f"{name} must be true or false; using {str(default).lower()}")
    return default


def env_choice(raw: str | None, name: str, choices: tuple[str, ...], default: str, warnings: list[str]) -> str:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower().replace("-", "_")
    if value not in choices:
        warnings.append(f"{name} must be one of {', '.join(choices)}; using {default}")
        return default
    return value


_PROJECT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")  # the schema's ProjectName
MIN_SECRET_BYTES = 24  # Standard Webhooks: secrets of 24 to 64 random bytes


def project_name(raw: str | None, warnings: list[str]) -> str | None:
    """IMM_PROJECT, when it is a name a document could give (else a warning, and documents must name theirs)."""
    if raw is None or _PROJECT_NAME.fullmatch(raw):
        return raw
    warnings.append("IMM_PROJECT is not a valid ProjectName ([A-Za-z0-9_-], at most 128); it is ignored")
    return None


def oss_object_limit(raw: str | None, max_body_bytes: int, warnings: list[str]) -> int | None:
    """OSS_MAX_OBJECT_BYTES (1 to 32 MiB), or None for its default, MAX_BODY_BYTES (also when it is malformed, and
    the warning says so)."""
    limit = env_int(raw, "OSS_MAX_OBJECT_BYTES", 0, 1, 32 * 1024 * 1024, warnings, f"MAX_BODY_BYTES ({max_body_bytes})")
    return limit or None


def imm_max_qps(raw: str | None, warnings: list[str]) -> float:
    """IMM_MAX_QPS: 0 (no limit, the default) or MIN_IMM_MAX_QPS to MAX_IMM_MAX_QPS calls a second. Not a number,
    negative, infinite or over the maximum warns and means no limit, like any malformed number. A pace slower than
    one call every 100 s (`1e-300`, a subnormal) warns and is raised to it: a call's turn would come aeons after the
    one before (or never: 1/qps overflows), so every IMM call after an instance's first would be given up at the
    deadline and its item retried for ever. Slow paces above the floor (`0.5`, `0.05`) are kept as given: the
    value is a quota, and the pacer gives up a turn that would come after the deadline (the item is retried; when
    the pace cannot fit a document's two calls in the invocation at all, as a `ConfigurationError`: imm.py)."""
    qps = env_float(raw, "IMM_MAX_QPS", 0.0, 0.0, MAX_IMM_MAX_QPS, warnings)
    if 0 < qps < MIN_IMM_MAX_QPS:
        warnings.append(
            f"IMM_MAX_QPS must be 0 (no limit) or at least {MIN_IMM_MAX_QPS:g} (one call every "
            f"{1 / MIN_IMM_MAX_QPS:g} s: a slower pace stalls every call after an instance's first); "
            f"using {MIN_IMM_MAX_QPS:g}"
        )
        return MIN_IMM_MAX_QPS
    return qps


def webhook_secrets(raw: str | None, warnings: list[str]) -> tuple[str, ...]:
    """The `whsec_<base64>` secrets in WEBHOOK_SECRET (space separated). One that is malformed or shorter than
    24 bytes is left out with a warning: it would verify nothing, or too little (fail closed)."""
    import base64
    import binascii

    kept = []
    for n, secret in enumerate((raw or "").split(), start=1):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True) if secret.startswith("whsec_") else b""
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < MIN_SECRET_BYTES:
            warnings.append(
                f"WEBHOOK_SECRET holds a secret (number {n}) that is not whsec_ and base64 of at least "
                f"{MIN_SECRET_BYTES} bytes; it is left out"
            )
            continue
        kept.append(secret)
    return tuple(kept)


# Which outcomes the optional sinks receive. Every mode includes the dead letters (final failures): they never
# raise, so the sinks and the log are their only trace.
SINK_FILTERS = ("all", "failures", "dead_letters")


def sink_filter(env: Mapping[str, str], name: str, warnings: list[str]) -> str | None:
    """A sink's own filter (`RESULT_MNS_FILTER`, ...), or None to use RESULT_SINK_FILTER: when it is unset, and when
    it is malformed (its default is RESULT_SINK_FILTER, so a typo must not widen the sink to every outcome)."""
    value = env_choice(env.get(name), name, SINK_FILTERS, "RESULT_SINK_FILTER", warnings)
    return value if value in SINK_FILTERS else None  # the default's name: unset or malformed


@dataclass(frozen=True)
class Settings:
    # IMM
    imm_endpoint: str | None = None
    imm_protocol: str = "https"
    imm_region: str | None = None
    imm_network: str | None = None  # "vpc": the VPC endpoints of IMM, OSS, MNS and FC
    imm_project: str | None = None
    imm_precheck: bool = True
    max_attempts: int = 4
    backoff_base_ms: int = 200
    backoff_max_ms: int = 5000
    connect_timeout_ms: int = 3000
    read_timeout_ms: int = 10000
    imm_max_qps: float = 0.0  # 0: no limit
    # HTTP trigger
    http_auth: str = "webhook"
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    # input limits and concurrency
    max_body_bytes: int = 1024 * 1024
    max_documents: int = 100
    oss_max_object_bytes: int | None = None  # None: max_body_bytes
    concurrency: int = 8
    oss_endpoint: str | None = None
    # fleet updates
    work_queue: str | None = None
    work_queue_endpoint: str | None = None
    fanout_batches: int = 100
    # the platform (FC sets these)
    fc_region: str | None = None
    fc_account_id: str | None = None
    fc_function_name: str | None = None
    # optional sinks: what they share, and each configured sink's own settings (see `sinks.SINKS`)
    sink_filter: str = "all"
    sink_timeout_ms: int = 5000
    sink_attempts: int = 2
    trigger_mns_topics: tuple[str, ...] = ()
    sinks: tuple[Any, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def object_limit(self) -> int:
        """The largest OSS object read as update documents."""
        return self.oss_max_object_bytes or self.max_body_bytes

    def function_region(self, context_region: str | None) -> str | None:
        """The function's own region: the invocation context's, else FC_REGION. What is the function's is there:
        its work queue (the queue triggers it), the sinks' default MNS and FC endpoints, OSS objects read without a
        region of their own (config objects, an OSS event record without one). Never IMM_REGION: IMM may be in
        another region than the function (it is offered in fewer regions than FC)."""
        return context_region or self.fc_region

    def imm_region_for(self, function_region: str | None) -> str | None:
        """IMM's region: IMM_REGION, else the function's region. Used for IMM's endpoint and nothing else."""
        return self.imm_region or function_region

    @classmethod
    def current(cls) -> Settings:
        """This instance's settings (parsed on first use; see the module docstring)."""
        settings = _current
        if settings is None:
            with _lock:
                settings = _current or _remember(cls.from_env())
        return settings

    @staticmethod
    def reload() -> None:
        """Forget the parsed settings: the next `current()` reads the environment again."""
        global _current
        _current = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        warnings: list[str] = []

        def integer(name: str, default: int, low: int, high: int) -> int:
            return env_int(env.get(name), name, default, low, high, warnings)

        protocol = env_choice(env.get("IMM_PROTOCOL"), "IMM_PROTOCOL", ("https", "http"), "https", warnings)
        # Fail closed: an unknown mode must never open the endpoint.
        http_auth = env_choice(env.get("HTTP_AUTH"), "HTTP_AUTH", ("webhook", "none"), "webhook", warnings)
        # "public" (the default) or "vpc": a typo such as "vcp" warns instead of silently using public endpoints.
        network = env_choice(env.get("IMM_NETWORK"), "IMM_NETWORK", ("public", "vpc"), "public", warnings)
        from imm_batch_updater import sinks as optional_sinks  # each sink parses its own variables

        sinks = optional_sinks.configure(env, warnings)
        imm_region, fc_region = text(env, "IMM_REGION"), text(env, "FC_REGION")
        if network == "vpc" and imm_region and fc_region and imm_region.lower() != fc_region.lower():
            if not text(env, "IMM_ENDPOINT"):
                # Kept as set (the function's OSS, MNS and FC still have their internal endpoints), but said once:
                # a VPC endpoint is reached from the VPCs of its own region, and IMM is in another one.
                warnings.append(
                    f"IMM_NETWORK=vpc with IMM in another region (IMM_REGION={imm_region}) than the function "
                    f"(FC_REGION={fc_region}): imm-vpc.{imm_region}.aliyuncs.com is only reachable from that region's "
                    f"VPCs; set IMM_ENDPOINT (imm.{imm_region}.aliyuncs.com, public) unless your network reaches it"
                )
        return cls(
            imm_endpoint=text(env, "IMM_ENDPOINT"),
            imm_protocol=protocol,
            imm_region=imm_region,
            imm_network="vpc" if network == "vpc" else None,
            imm_project=project_name(text(env, "IMM_PROJECT"), warnings),
            imm_precheck=env_bool(env.get("IMM_PRECHECK"), "IMM_PRECHECK", True, warnings),
            max_attempts=integer("IMM_MAX_ATTEMPTS", 4, 1, 20),
            backoff_base_ms=integer("IMM_BACKOFF_BASE_MS", 200, 1, 60_000),
            backoff_max_ms=integer("IMM_BACKOFF_MAX_MS", 5000, 1, 600_000),
            connect_timeout_ms=integer("IMM_CONNECT_TIMEOUT_MS", 3000, 100, 60_000),
            read_timeout_ms=integer("IMM_READ_TIMEOUT_MS", 10000, 100, 600_000),
            imm_max_qps=imm_max_qps(env.get("IMM_MAX_QPS"), warnings),
            http_auth=http_auth,
            webhook_secrets=webhook_secrets(env.get("WEBHOOK_SECRET"), warnings),
            max_body_bytes=(max_body := integer("MAX_BODY_BYTES", 1024 * 1024, 1024, 32 * 1024 * 1024)),
            max_documents=integer("MAX_DOCUMENTS", 100, 1, 1000),
            oss_max_object_bytes=oss_object_limit(env.get("OSS_MAX_OBJECT_BYTES"), max_body, warnings),
            concurrency=integer("UPDATE_CONCURRENCY", 8, 1, 64),
            oss_endpoint=text(env, "OSS_ENDPOINT"),
            work_queue=text(env, "WORK_QUEUE"),
            work_queue_endpoint=text(env, "WORK_QUEUE_ENDPOINT"),
            fanout_batches=integer("FANOUT_BATCHES", 100, 1, 10_000),
            fc_region=fc_region,
            fc_account_id=text(env, "FC_ACCOUNT_ID"),
            fc_function_name=text(env, "FC_FUNCTION_NAME"),
            sink_filter=env_choice(env.get("RESULT_SINK_FILTER"), "RESULT_SINK_FILTER", SINK_FILTERS, "all", warnings),
            sink_timeout_ms=integer("RESULT_SINK_TIMEOUT_MS", 5000, 100, 60_000),
            sink_attempts=integer("RESULT_SINK_ATTEMPTS", 2, 1, 5),
            trigger_mns_topics=tuple(topic_name(t) for t in names(env.get("TRIGGER_MNS_TOPICS"))),
            sinks=sinks,
            warnings=tuple(warnings),
        )


def topic_name(value: str) -> str:
    """`my-topic` or an ARN `acs:mns:cn-hangzhou:123:/topics/my-topic[/messages]` -> `my-topic`."""
    value = value.strip()
    if "/topics/" in value:
        value = value.split("/topics/", 1)[1]
    return value.split("/", 1)[0]


_current: Settings | None = None
_lock = threading.Lock()


def _remember(settings: Settings) -> Settings:
    global _current
    _current = settings
    return settings
