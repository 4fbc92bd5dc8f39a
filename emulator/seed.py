"""Initial emulator contents: the demo data set, or a JSON seed file.

Seed format (every part optional):

    {
      "keys": [{"AccessKeyId": "...", "AccessKeySecret": "...", "SecurityToken": "..."}],
      "imm": {"projects": {"<name>": {"batches": [{"Id": "...", "State": "Ready", "Input": {...}, ...}]}}},
      "oss": {...},   # handed to emulator.oss.load
      "mns": {...}    # handed to emulator.mns.load
    }

The demo seed gives a user something to point the function at right away: one batch the function may update
(Ready), one it must refuse (Running) and one it may update and resume (Failed).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

DEMO_PROJECT = "demo-project"
DEMO_BUCKET = "demo-bucket"
DEMO_TOPIC = "imm-batch-updater-results"

DEMO_SEED: dict[str, Any] = {
    "imm": {
        "projects": {
            DEMO_PROJECT: {
                "batches": [
                    {
                        "Id": "batch-demo-ready",
                        "State": "Ready",
                        "Input": {
                            "OSS": {
                                "Bucket": DEMO_BUCKET,
                                "Prefix": "incoming/docs/",
                                "MatchExpressions": ["*.docx", "*.pdf"],
                            }
                        },
                        "Actions": [{"Name": "doc/convert", "Parameters": ["target=png", "pages=3"]}],
                        "Notification": {"MNS": {"TopicName": DEMO_TOPIC}},
                        "ServiceRole": "AliyunIMMBatchTriggerRole",
                        "Tags": {"env": "demo", "team": "media"},
                        "CreateTime": "2026-01-05T08:00:00Z",
                        "UpdateTime": "2026-01-05T08:00:00Z",
                    },
                    {
                        "Id": "batch-demo-running",
                        "State": "Running",
                        "Input": {
                            "OSS": {"Bucket": DEMO_BUCKET, "Prefix": "incoming/videos/", "MatchExpressions": ["*.mp4"]}
                        },
                        "Actions": [
                            {"Name": "video/convert", "Parameters": ["format=mp4", "vcodec=h264"]},
                            {"Name": "video/snapshots", "Parameters": ["t=1000", "format=jpg"]},
                        ],
                        "ServiceRole": "AliyunIMMBatchTriggerRole",
                        "Tags": {"env": "demo", "team": "video"},
                        "Statistic": {"SubmitSuccess": 42, "SubmitFailure": 0, "SkipFiles": 3},
                        "Phase": "IncrementalScanning",
                        "CreateTime": "2026-01-05T08:10:00Z",
                        "UpdateTime": "2026-01-05T09:00:00Z",
                    },
                    {
                        "Id": "batch-demo-failed",
                        "State": "Failed",
                        "Input": {
                            "OSS": {"Bucket": DEMO_BUCKET, "Prefix": "incoming/audio/", "MatchExpressions": ["*.wav"]}
                        },
                        "Actions": [{"Name": "audio/convert", "Parameters": ["format=mp3", "ab=128000"]}],
                        "ServiceRole": "AliyunIMMBatchTriggerRole",
                        "Tags": {"env": "demo", "team": "audio", "pipeline": "nightly"},
                        "Statistic": {"SubmitSuccess": 7, "SubmitFailure": 2, "SkipFiles": 0},
                        "Error": "api returns error: SDKError: StatusCode: 403 Code: NoPermission "
                        "Message: The RAM role AliyunIMMBatchTriggerRole cannot read oss://demo-bucket/incoming/audio/",
                        "CreateTime": "2026-01-05T08:20:00Z",
                        "UpdateTime": "2026-01-05T10:30:00Z",
                    },
                ]
            }
        }
    },
    "oss": {"buckets": {DEMO_BUCKET: {"objects": {}}}},
    "mns": {"topics": [DEMO_TOPIC]},
}


def demo_seed() -> dict[str, Any]:
    """A fresh copy of the demo seed (callers may modify it)."""
    return copy.deepcopy(DEMO_SEED)


def read_seed(seed: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Resolve "demo", a JSON file path or a dict into a seed dict."""
    if isinstance(seed, dict):
        return seed
    if str(seed) == "demo":
        return demo_seed()
    data = json.loads(Path(seed).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"seed file {seed} must hold a JSON object")
    return data


def load_seed(emulator: Any, seed: str | Path | dict[str, Any]) -> None:
    """Fill `emulator` (an `emulator.server.Emulator`) from a seed; see the module docstring for the format."""
    data = read_seed(seed)
    for key in data.get("keys") or []:
        emulator.keyring.add(key["AccessKeyId"], key["AccessKeySecret"], key.get("SecurityToken"))
    emulator.imm.load(data.get("imm"))
    for name in ("oss", "mns"):
        service = getattr(emulator, name, None)
        if data.get(name) is not None and hasattr(service, "load"):
            service.load(data[name])
