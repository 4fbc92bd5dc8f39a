"""What the fan-out tests share: a fleet project, its work queue and a selector document over its gold batches (the
`work_queue` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

FLEET = "fleet-project"
QUEUE = "imm-batch-updater-work"
ACTIONS = [{"Name": "video/convert", "Parameters": ["fps=24"]}]


def selector_doc(**fields: Any) -> dict[str, Any]:
    """A document for every batch of FLEET tagged tier=gold, setting ACTIONS (fields override)."""
    return {"ProjectName": FLEET, "Selector": {"TagSelector": "tier=gold"}, "Actions": ACTIONS, **fields}
