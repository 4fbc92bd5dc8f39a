"""`python -m emulator`: run IMM + OSS + MNS on one local port until Ctrl-C.

    python -m emulator [--host 127.0.0.1] [--port 9100] [--seed demo|none|FILE]
                       [--access-key-id ID --access-key-secret SECRET]
                       [--fault ACTION:KIND[:COUNT][:k=v,...]]... [--fault-rate R --fault-seed N --fault-kinds K,K]
                       [--progress FROM:TO:after_reads=N|after_seconds=T]...

It prints the endpoint, the key it accepts (a local, made-up demo key) and the environment that points the
function, or any SDK client, at it.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from emulator.faults import KINDS
from emulator.server import Emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="Local emulator of IMM batches, OSS objects and MNS topics."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port (default 9100; 0 picks a free one)")
    parser.add_argument("--seed", default="demo", help="demo (default), none, or a JSON seed file")
    parser.add_argument("--region", default="cn-hangzhou", help="region the emulator pretends to be")
    parser.add_argument("--access-key-id", default="local-ak", help="accepted AccessKey id (default local-ak)")
    parser.add_argument("--access-key-secret", default="local-secret", help="its secret (default local-secret)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ACTION:KIND[:COUNT][:k=v,...]",
        help=f"scripted fault, repeatable; KIND one of {', '.join(KINDS)}; e.g. UpdateBatch:throttle:3:status=429",
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability that any call fails (0..1)")
    parser.add_argument("--fault-seed", type=int, default=None, help="random seed for --fault-rate")
    parser.add_argument(
        "--fault-kinds", default="throttle,internal,unavailable", help="kinds drawn by --fault-rate, comma separated"
    )
    parser.add_argument(
        "--fault-actions", default="*", help="actions --fault-rate applies to, comma separated (default all)"
    )
    parser.add_argument(
        "--progress",
        action="append",
        default=[],
        metavar="FROM:TO:after_reads=N|after_seconds=T",
        help="server-side batch state change, repeatable; e.g. Running:Succeeded:after_seconds=30",
    )
    return parser


def parse_progress(spec: str) -> dict[str, object]:
    """`Running:Succeeded:after_seconds=30` → keyword arguments for `ImmService.progress`."""
    parts = spec.split(":")
    if len(parts) != 3 or "=" not in parts[2]:
        raise ValueError(f"progress spec {spec!r} is not FROM:TO:after_reads=N|after_seconds=T")
    key, _, value = parts[2].partition("=")
    if key == "after_reads":
        return {"state_from": parts[0], "to": parts[1], "after_reads": int(value)}
    if key == "after_seconds":
        return {"state_from": parts[0], "to": parts[1], "after_seconds": float(value)}
    raise ValueError(f"progress spec {spec!r}: use after_reads=N or after_seconds=T")


def configure(args: argparse.Namespace) -> Emulator:
    """An emulator (not started) set up from the parsed command line."""
    emulator = Emulator(
        seed=None if args.seed == "none" else args.seed,
        access_key_id=args.access_key_id,
        access_key_secret=args.access_key_secret,
        host=args.host,
        port=args.port,
        region=args.region,
    )
    for spec in args.fault:
        emulator.faults.add_spec(spec)
    if args.fault_rate:
        emulator.faults.random(
            args.fault_rate,
            [k.strip() for k in args.fault_kinds.split(",") if k.strip()],
            args.fault_seed,
            actions=[a.strip() for a in args.fault_actions.split(",") if a.strip()],
        )
    for spec in args.progress:
        emulator.imm.progress(**parse_progress(spec))  # type: ignore[arg-type]
    return emulator


def banner(emulator: Emulator) -> str:
    key_id, secret = emulator.access_key_id, emulator.access_key_secret
    projects = ", ".join(emulator.imm.projects()) or "(none)"
    return "\n".join(
        [
            f"IMM/OSS/MNS emulator listening on {emulator.url}  (region {emulator.region})",
            f"accepted key: AccessKeyId={key_id} AccessKeySecret={secret}  (local emulator key, not a cloud key)",
            f"IMM projects: {projects}",
            "point the function (or any SDK client) at it with:",
            f"  export IMM_ENDPOINT={emulator.endpoint} IMM_PROTOCOL=http IMM_REGION={emulator.region}",
            # the function's own region too (context.region, else FC_REGION: OSS reads, its queue, its sinks), which
            # IMM_REGION no longer gives: one region for everything, the emulator's (its OSS checks V4's region)
            f"  export FC_REGION={emulator.region}",
            f"  export OSS_ENDPOINT={emulator.url}    # oss2 and aliyun-mns-sdk also take {emulator.url}",
            *work_queue_lines(emulator),
            f"  export ALIBABA_CLOUD_ACCESS_KEY_ID={key_id} ALIBABA_CLOUD_ACCESS_KEY_SECRET={secret}",
            "  unset ALIBABA_CLOUD_SECURITY_TOKEN",
            "press Ctrl-C to stop",
        ]
    )


def work_queue_lines(emulator: Emulator) -> list[str]:
    """The banner's fan-out lines: only a queue that exists can be WORK_QUEUE (the emulator answers CreateQueue
    NotImplemented)."""
    queues = emulator.mns.queues()
    if queues:
        return [
            f"  export WORK_QUEUE_ENDPOINT={emulator.url} WORK_QUEUE={queues[0]}    # queues here: {', '.join(queues)}"
        ]
    return [
        "  # fan-out (WORK_QUEUE): this emulator has no MNS queue (the seed has none, CreateQueue is not emulated);",
        '  # seed one with --seed FILE ({"mns": {"queues": ["imm-batch-updater-work"]}}; a seed file replaces the',
        "  # demo data, demo-project included: the format is in emulator/seed.py), or run",
        "  # `WORK_QUEUE=NAME python3 dev.py serve`, which makes the queue in its emulator and delivers it back",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        emulator = configure(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        emulator.start()
    except OSError as exc:
        fix = ""
        if exc.errno == errno.EADDRINUSE:
            fix = (
                f" (another `python3 dev.py serve` or emulator?); choose another with --port, "
                f"e.g. --port {args.port + 1 if 0 < args.port < 65535 else 9101}, or --port 0 for a free one"
            )
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}{fix}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers only install there
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(banner(emulator), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
