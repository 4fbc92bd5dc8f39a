"""Seeds: the demo data set and JSON seed files."""

from __future__ import annotations

import json

import pytest

from emulator import Emulator
from emulator.seed import DEMO_SEED, demo_seed, load_seed, read_seed

P = "demo-project"


def test_demo_seed_contents():
    emulator = Emulator(seed="demo")
    batches = {b["Id"]: b for b in emulator.imm.list_batches(P)}
    assert {k: b["State"] for k, b in batches.items()} == {
        "batch-demo-ready": "Ready",
        "batch-demo-running": "Running",
        "batch-demo-failed": "Failed",
    }
    for batch in batches.values():
        assert batch["Input"]["OSS"]["Bucket"] == "demo-bucket"
        assert batch["Input"]["OSS"]["Prefix"].startswith("incoming/")
        assert batch["Input"]["OSS"]["MatchExpressions"]
        assert batch["Actions"] and all("/" in a["Name"] and a["Parameters"] for a in batch["Actions"])
        assert batch["Tags"]["env"] == "demo"
        assert batch["ServiceRole"] == "AliyunIMMBatchTriggerRole"
    assert batches["batch-demo-failed"]["Error"]
    assert "Error" not in batches["batch-demo-ready"]
    assert batches["batch-demo-ready"]["Actions"][0]["Name"] == "doc/convert"
    assert "demo-bucket" in emulator.oss.buckets()
    assert "imm-batch-updater-results" in emulator.mns.topics()


def test_demo_seed_is_copied_not_shared():
    seed = demo_seed()
    seed["imm"]["projects"][P]["batches"].clear()
    assert len(DEMO_SEED["imm"]["projects"][P]["batches"]) == 3


def test_seed_file_with_keys_batches_and_other_services(tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps(
            {
                "keys": [{"AccessKeyId": "STS.seed", "AccessKeySecret": "s", "SecurityToken": "t"}],
                "imm": {
                    "projects": {
                        "p": {
                            "batches": [
                                {
                                    "Id": "batch-a",
                                    "State": "Suspended",
                                    "Tags": {"k": "v"},
                                    "Phase": "FullScanning",
                                    "CreateTime": "2026-02-01T00:00:00Z",
                                },
                                {"Id": "batch-b"},
                            ]
                        },
                        "empty": {},
                    }
                },
                "oss": {"buckets": {"docs": {"objects": {"u.json": {"Id": "batch-a"}}}}},
                "mns": {"topics": ["t1"]},
            }
        )
    )
    emulator = Emulator(seed=str(path))
    assert emulator.keyring.lookup("STS.seed") == ("s", "t")
    a = emulator.imm.get_batch("p", "batch-a")
    assert (a["State"], a["Tags"], a["Phase"], a["CreateTime"]) == (
        "Suspended",
        {"k": "v"},
        "FullScanning",
        "2026-02-01T00:00:00Z",
    )
    assert emulator.imm.get_batch("p", "batch-b")["State"] == "Ready"
    assert sorted(emulator.imm.projects()) == ["empty", "p"]
    assert emulator.oss.get_object("docs", "u.json") == b'{"Id":"batch-a"}'
    assert emulator.mns.topics() == ["t1"]


def test_dict_seed_and_none():
    emulator = Emulator(seed=None)
    assert emulator.imm.projects() == []
    load_seed(emulator, {"imm": {"projects": {"x": {"batches": [{"Id": "batch-x", "State": "Running"}]}}}})
    assert emulator.imm.get_batch("x", "batch-x")["State"] == "Running"


def test_bad_seed_files(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(ValueError):
        read_seed(str(path))
    bad_state = {"imm": {"projects": {"x": {"batches": [{"Id": "b", "State": "Done"}]}}}}
    with pytest.raises(ValueError):
        load_seed(Emulator(seed=None), bad_state)
