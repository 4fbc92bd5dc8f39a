"""Function Compute entry point (pinned): `handler.handler(event, context)` serves every trigger.

Thin wiring only; the code lives in the `imm_batch_updater` package. The App is built once per instance so the
compiled schema, the IMM client and its connection are reused by warm invocations.
"""

from typing import Any

from imm_batch_updater.app import App

app = App()


def handler(event: Any, context: Any) -> Any:
    """FC's entry point: `event` is bytes (str and dict accepted too); returns the trigger's answer.

    Event triggers get `{"results": [...]}` (and `DeliveryIncomplete` is raised after reporting when something
    may succeed later); HTTP triggers get FC's response struct `{"statusCode", "headers", "body"}`.
    """
    return app.handle(event, context)
