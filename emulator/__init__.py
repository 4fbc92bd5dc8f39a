"""Local emulator of the Alibaba Cloud APIs the function uses: IMM batches, OSS objects, MNS topics.

A development and test tool, never deployed with the function. The real SDKs talk to it over HTTP on
127.0.0.1; it verifies their signatures like the cloud gateways do.

    from emulator import Emulator
    with Emulator() as emu:            # demo seed, key local-ak / local-secret, a free port
        print(emu.endpoint)            # "127.0.0.1:54321"
"""

from emulator.server import Emulator

__all__ = ["Emulator"]
