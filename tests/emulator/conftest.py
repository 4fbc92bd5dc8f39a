"""Fixtures for the emulator's own tests: a live in-process emulator and real IMM SDK clients pointed at it.

Only the IMM SDK (`alibabacloud-imm20200930`) talks to the emulator here, always with explicit keys in
`Config`: `alibabacloud_credentials` reads ALIBABA_CLOUD_* variables at import time, so nothing from the
environment may leak in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alibabacloud_imm20200930.client import Client  # noqa: E402
from alibabacloud_tea_openapi.models import Config  # noqa: E402

from emulator import Emulator  # noqa: E402

AK, SECRET = "local-ak", "local-secret"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A started emulator with the demo seed on a free port."""
    with Emulator(seed="demo") as emulator:
        yield emulator


@pytest.fixture
def make_client(emu: Emulator) -> Callable[..., Client]:
    """Build a real IMM client for the emulator; keyword arguments go to `Config`."""

    def build(
        access_key_id: str = AK, access_key_secret: str = SECRET, security_token: str | None = None, **config
    ) -> Client:
        return Client(
            Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                security_token=security_token,
                endpoint=emu.endpoint,
                protocol="http",
                **config,
            )
        )

    return build


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Client:
    return make_client()


class FakeClock:
    """A settable time.time() for the IMM store (CreateTime/UpdateTime and `after_seconds` progressions)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(emu: Emulator) -> FakeClock:
    """Install a fake clock on the emulator's IMM store (signatures keep using real time)."""
    fake = FakeClock()
    emu.imm.clock = fake
    return fake
