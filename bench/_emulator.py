"""The emulator in a process of its own, as IMM is on the other end of a network: `python -m bench._emulator`.

Reads one JSON line on stdin -- {"key": [id, secret, token], "batches": [ids], "faults": ["ACTION:KIND:..."]} --
prints its endpoint, then serves until stdin is closed. Used by the warm-overhead and throughput figures, so that
the emulator's request handling does not share a GIL (or the CPU time being measured) with the function.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from emulator import Emulator

    config = json.loads(sys.stdin.readline())
    emu = Emulator(seed="demo").start()
    access_key_id, secret, token = config["key"]
    emu.keyring.add(access_key_id, secret, token)
    for batch_id in config.get("batches", []):
        emu.imm.create_batch(config.get("project", "demo-project"), id=batch_id, state="Ready")
    for spec in config.get("faults", []):
        emu.faults.add_spec(spec)
    print(emu.endpoint, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    emu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
