"""The emulator's quota: IMM-style flow control (a token bucket), so the fleet benchmark can show that pacing with
IMM_MAX_QPS draws no throttling answers, and that not pacing does."""

from __future__ import annotations

import time

from alibabacloud_imm20200930 import models
from alibabacloud_tea_openapi.exceptions import ClientException
from darabonba.runtime import RuntimeOptions


def test_calls_beyond_the_quota_are_throttled_and_counted(emu, client):
    imm_client = client
    emu.faults.quota(5)
    outcomes = []
    for _ in range(12):
        try:
            imm_client.get_batch_with_options(
                models.GetBatchRequest(project_name="demo-project", id="batch-demo-ready"), RuntimeOptions()
            )
            outcomes.append("ok")
        except ClientException as exc:
            outcomes.append(exc.code)
    assert outcomes[:5] == ["ok"] * 5 and set(outcomes[5:]) == {"Throttling.User"}
    assert emu.faults.count(kind="throttle") == 7
    time.sleep(0.45)  # refilled at 5/s: two more calls pass
    imm_client.get_batch_with_options(
        models.GetBatchRequest(project_name="demo-project", id="batch-demo-ready"), RuntimeOptions()
    )
    emu.faults.quota(None)
    assert emu.faults.count(kind="throttle") == 7
