"""Print a ready-to-paste curl command that POSTs a Standard Webhooks-signed update to the function.

    python -m devtools.sign examples/update.json                      # secret from WEBHOOK_SECRET
    python -m devtools.sign --url http://127.0.0.1:9000/ --secret whsec_... - < doc.json

The signature carries a timestamp and is valid for 5 minutes; run the command again for a fresh one.
Development tool: never deployed with the function.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import uuid

from imm_batch_updater.webhooks import sign


def curl_command(url: str, secret: str, body: bytes) -> str:
    headers = sign(secret, f"msg_{uuid.uuid4().hex}", body)
    parts = ["curl", "-sS", "-X", "POST", url, "-H", "Content-Type: application/json"]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", body.decode("utf-8")]
    return " ".join(shlex.quote(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="the update document (or array) to send; - for stdin")
    parser.add_argument("--url", default=os.environ.get("FUNCTION_URL", "http://127.0.0.1:9000/"))
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", "").split(" ")[0])
    args = parser.parse_args(argv)
    if not args.secret:
        print("no secret: pass --secret or set WEBHOOK_SECRET", file=sys.stderr)
        return 2
    body = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()  # noqa: SIM115
    print(curl_command(args.url, args.secret, body.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
