"""Function Compute entry point (pinned): `handler.handler(event, context)` serves every trigger.

Thin wiring only; the code lives in the `imm_batch_updater` package. The App is built once per instance so the
compiled schema, the IMM client and its connection are reused by warm invocations; `handler` is its `handle`
method itself (no wrapper call on every invocation).
"""

from imm_batch_updater.app import App

app = App()
handler = app.handle
