"""Which IMM the local tools (`dev.py serve`, `dev.py invoke`) talk to: the bundled emulator, or the IMM you name.

- Neither `IMM_REGION` nor `IMM_ENDPOINT` set: the bundled emulator (started in-process, demo data, its own keys).
- Either set: that IMM (`IMM_ENDPOINT`, else `imm.{IMM_REGION}.aliyuncs.com`, `imm-vpc...` with `IMM_NETWORK=vpc`),
  with the keys in `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (and
  `ALIBABA_CLOUD_SECURITY_TOKEN` for STS keys). Without keys the tools stop with a message saying what to set, and an
  endpoint that does not accept a connection stops them too: they never fall back to the emulator.

Development tool: never deployed with the function.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

KEY_VARS = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")


class TargetError(Exception):
    """The environment names an IMM the tool cannot use; the message says what to do."""


@dataclass(frozen=True)
class Target:
    real: bool
    host: str = ""
    port: int = 0
    protocol: str = ""
    chosen_by: str = ""  # the variable that selected real IMM

    @property
    def address(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"


def choose(env: Mapping[str, str] = os.environ) -> Target:
    """The target the environment asks for (raises TargetError when it asks for real IMM without keys)."""
    endpoint = env.get("IMM_ENDPOINT", "").strip()
    region = env.get("IMM_REGION", "").strip()
    if not endpoint and not region:
        return Target(real=False)
    chosen_by = f"IMM_ENDPOINT={endpoint}" if endpoint else f"IMM_REGION={region}"
    missing = [name for name in KEY_VARS if not env.get(name)]
    if missing:
        raise TargetError(
            f"{chosen_by} selects a real IMM, but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            "set. Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (and "
            "ALIBABA_CLOUD_SECURITY_TOKEN for STS keys), or unset IMM_ENDPOINT and IMM_REGION to use the bundled "
            "emulator."
        )
    protocol = (env.get("IMM_PROTOCOL", "").strip().lower() or "https").removesuffix("://")
    if not endpoint:
        service = "imm-vpc" if env.get("IMM_NETWORK", "").strip().lower() == "vpc" else "imm"
        endpoint = f"{service}.{region}.aliyuncs.com"
    host, port = split_endpoint(endpoint, 80 if protocol == "http" else 443)
    return Target(real=True, host=host, port=port, protocol=protocol, chosen_by=chosen_by)


def local_region(env: Mapping[str, str] = os.environ) -> str:
    """The region the tools' stand-in for FC's context gives the function (`context.region`, its own region: where
    its OSS config objects, work queue and result sinks are): FC_REGION, else IMM_REGION (locally, one region for
    everything is the usual setup), else cn-hangzhou. The function takes IMM's region from IMM_REGION alone, so
    setting both runs it as a function in FC_REGION that calls IMM in IMM_REGION. Against the emulator (one region
    for everything) the tools set both to the emulator's region."""
    return env.get("FC_REGION", "").strip() or env.get("IMM_REGION", "").strip() or "cn-hangzhou"


# The function as s.yaml deploys it: every local tool runs it under this name (its outcome log lines carry it) and
# memory, so a line from `serve`, `pump` or `invoke` reads as one from FC.
FUNCTION_NAME = "imm-batch-updater"
FUNCTION_MEMORY_MB = 512


def fc_function(timeout_s: float) -> SimpleNamespace:
    """`context.function` as FC gives it to the deployed function (s.yaml's name and memorySize), for every tool."""
    return SimpleNamespace(name=FUNCTION_NAME, handler="handler.handler", memory=FUNCTION_MEMORY_MB, timeout=timeout_s)


def split_endpoint(endpoint: str, default_port: int) -> tuple[str, int]:
    """host[:port] (a scheme or a path, if given, are ignored) -> (host, port)."""
    rest = endpoint.split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):  # [IPv6]:port
        host, _, after = rest[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
    else:
        host, _, port = rest.partition(":")
    return host, int(port) if port.isdigit() else default_port


def unreachable(target: Target, timeout_s: float = 5.0) -> str | None:
    """Why a TCP connection to the target cannot be opened, or None when it can."""
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout_s):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (
            f"cannot reach IMM at {target.address} (from {target.chosen_by}): {reason}. Check IMM_ENDPOINT / "
            "IMM_REGION / IMM_PROTOCOL, or unset IMM_ENDPOINT and IMM_REGION to use the bundled emulator."
        )


# -- the emulator's MNS: where the function's work queue and result topic go when IMM is the emulator -------------
MNS_ENDPOINT_VARS = ("WORK_QUEUE_ENDPOINT", "RESULT_MNS_ENDPOINT")


def point_function_at(emu: Any, env: MutableMapping[str, str] = os.environ) -> list[str]:
    """Point the function's environment at the started emulator `emu` (`serve` and `invoke`): its IMM (over http),
    its OSS, the function's own region and IMM's both the emulator's (one region for everything: its OSS checks V4's
    region), and its MNS (`emulator_mns`, whose result this returns)."""
    env.update(
        {
            "IMM_ENDPOINT": emu.endpoint,
            "IMM_PROTOCOL": "http",
            "IMM_REGION": emu.region,
            "FC_REGION": emu.region,
            "OSS_ENDPOINT": emu.url,
        }
    )
    return emulator_mns(emu, env)


def emulator_mns(emu: Any, env: MutableMapping[str, str] = os.environ) -> list[str]:
    """Keep MNS local when the tools run against the emulator `emu`: WORK_QUEUE_ENDPOINT and RESULT_MNS_ENDPOINT
    default to it (a value the user set is kept), and the WORK_QUEUE queue and RESULT_MNS_TOPIC topic are made in
    it when those name one there. Returns what was made ("queue NAME", "topic NAME")."""
    made = []
    for name in MNS_ENDPOINT_VARS:
        if not env.get(name, "").strip():
            env[name] = emu.url
    queue = env.get("WORK_QUEUE", "").strip()
    if queue and is_emulator(env["WORK_QUEUE_ENDPOINT"], emu.url) and queue not in emu.mns.queues():
        emu.mns.create_queue(queue)
        made.append(f"queue {queue}")
    topic = env.get("RESULT_MNS_TOPIC", "").strip()
    if topic and is_emulator(env["RESULT_MNS_ENDPOINT"], emu.url) and topic not in emu.mns.topics():
        emu.mns.create_topic(topic)
        made.append(f"topic {topic}")
    return made


def is_emulator(endpoint: str, emulator_url: str) -> bool:
    """Whether `endpoint` (a URL or host[:port]) is the emulator at `emulator_url`."""
    return split_endpoint(endpoint.strip(), 80) == split_endpoint(emulator_url, 80)


def is_local(endpoint: str) -> bool:
    """Whether `endpoint` (a URL or host[:port]) is on this machine (a loopback address or localhost)."""
    host, _ = split_endpoint(endpoint.strip(), 80)
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def imm_for_local_queue(mns_endpoint: str, env: MutableMapping[str, str] = os.environ) -> str | None:
    """`dev.py pump`'s rule: a queue read from a local MNS (the emulator) is applied to that emulator's IMM too,
    unless the user set IMM_ENDPOINT. Points the function's environment there (IMM_ENDPOINT, IMM_PROTOCOL=http, and
    OSS_ENDPOINT / WORK_QUEUE_ENDPOINT / RESULT_MNS_ENDPOINT unless set) and returns the emulator's URL; None when
    the queue is not local or IMM_ENDPOINT was set (the environment is left as it is)."""
    if not is_local(mns_endpoint) or env.get("IMM_ENDPOINT", "").strip():
        return None
    host, port = split_endpoint(mns_endpoint.strip(), 80)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    env["IMM_ENDPOINT"], env["IMM_PROTOCOL"] = address, "http"
    for name in ("OSS_ENDPOINT", *MNS_ENDPOINT_VARS):
        if not env.get(name, "").strip():
            env[name] = f"http://{address}"
    return f"http://{address}"
