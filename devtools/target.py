"""Which IMM the local tools (`dev.py serve`, `dev.py invoke`) talk to: the bundled emulator, or the IMM you name.

- Neither `IMM_REGION` nor `IMM_ENDPOINT` set: the bundled emulator (started in-process, demo data, its own keys).
- Either set: that IMM (`IMM_ENDPOINT`, else `imm.{IMM_REGION}.aliyuncs.com`, `imm-vpc...` with `IMM_NETWORK=vpc`),
  with the keys in `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (and
  `ALIBABA_CLOUD_SECURITY_TOKEN` for STS keys). Without keys the tools stop with a message saying what to set, and an
  endpoint that does not accept a connection stops them too: they never fall back to the emulator.

Development tool: never deployed with the function.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

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
