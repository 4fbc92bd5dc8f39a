"""Sign an update document with Standard Webhooks and print a ready-to-paste curl command that POSTs it to the
function, or (--send) send it and print the answer.

    export WEBHOOK_SECRET='whsec_...'                        # `python3 dev.py serve` prints the session's secret
    python3 dev.py sign examples/direct.json                 # prints the signed curl command
    python3 dev.py sign --send examples/direct.json          # sends it: the HTTP status on stderr, the answer on stdout
    python3 dev.py sign --url http://127.0.0.1:9001/ --secret whsec_... - < doc.json

The signature carries a timestamp and is valid for 5 minutes; run the command again for a fresh one.
Development tool: never deployed with the function.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from imm_batch_updater.webhooks import sign  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:9000/"
UNAUTHORIZED_HINT = (
    "dev.py sign: 401: the function does not accept this secret: sign with a WEBHOOK_SECRET it runs with "
    "(`python3 dev.py serve` makes a new one each time it starts: export the one it printed last; "
    "a deployed function: the one in .env, docs/deploy.md section 3)"
)


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign(secret, f"msg_{uuid.uuid4().hex}", body)}


def curl_command(url: str, secret: str, body: bytes, path: str | None = None) -> str:
    """The curl command that POSTs exactly the signed bytes: the file itself (`--data-binary @FILE`, so a trailing
    newline is sent as it was signed), or the body inline when it came from stdin."""
    parts = ["curl", "-sS", "-X", "POST", url]
    for name, value in signed_headers(secret, body).items():
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", f"@{path}" if path else body.decode("utf-8")]
    return " ".join(shlex.quote(p) for p in parts)


def secret_problem(secret: str) -> str | None:
    """Why `secret` cannot sign for the function (None when it can): the function's own rule, `whsec_` and base64
    of at least MIN_SECRET_BYTES (24) bytes (imm_batch_updater.config.webhook_secrets)."""
    import base64
    import binascii

    from imm_batch_updater.config import MIN_SECRET_BYTES

    if not secret.startswith("whsec_"):
        return "the secret does not start with whsec_"
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        return "the part after whsec_ is not base64"
    if len(key) < MIN_SECRET_BYTES:
        return f"the secret is shorter than {MIN_SECRET_BYTES} bytes (the function leaves it out)"
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer: never re-sent elsewhere (urllib would follow 301/302/303 with a GET carrying the
    webhook-signature to the Location), like the function's webhook sink."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def send(url: str, secret: str, body: bytes, timeout_s: float = 60.0) -> tuple[int, str]:
    """POST the signed body; (HTTP status, answer). Redirects are not followed."""
    request = urllib.request.Request(url, data=body, method="POST", headers=signed_headers(secret, body))
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py sign", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", help="the update document (or array) to send, e.g. examples/direct.json; - for stdin")
    parser.add_argument("--url", default=os.environ.get("FUNCTION_URL", DEFAULT_URL), help=f"default {DEFAULT_URL}")
    parser.add_argument("--secret", default=None, help="a whsec_... secret (default: the first in WEBHOOK_SECRET)")
    parser.add_argument(
        "--send", action="store_true", help="send the request; the answer on stdout, its HTTP status on stderr"
    )
    args = parser.parse_args(argv)
    secret = args.secret or (os.environ.get("WEBHOOK_SECRET", "").split() or [""])[0]
    if not secret:
        print(
            "dev.py sign: no secret. Export the WEBHOOK_SECRET that `python3 dev.py serve` printed (or the one you "
            "set for it), or pass --secret whsec_...",
            file=sys.stderr,
        )
        return 2
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"dev.py sign: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    problem = secret_problem(secret)
    if problem:
        print(f"dev.py sign: {problem}; use the WEBHOOK_SECRET `python3 dev.py serve` printed", file=sys.stderr)
        return 2
    if not args.send:
        print(curl_command(args.url, secret, body, None if args.file == "-" else args.file))
        return 0
    try:
        status, answer = send(args.url, secret, body)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        print(f"dev.py sign: no answer from {args.url}: {reason} (is `python3 dev.py serve` running?)", file=sys.stderr)
        return 1
    print(f"HTTP {status}", file=sys.stderr)  # stdout is exactly the answer: `sign --send F > results.json` works
    if status == 401:
        print(UNAUTHORIZED_HINT, file=sys.stderr)
    print(answer)
    return 0 if 200 <= status < 300 else 1  # README: exits 1 when the answer is not 2xx (a 3xx included)


if __name__ == "__main__":
    raise SystemExit(main())
