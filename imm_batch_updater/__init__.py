"""imm-batch-updater: apply configuration changes to IMM batch tasks from Function Compute triggers.

Data flows one way: event -> source adapter (`sources`) -> messages -> documents (`documents`) -> validation
(`validation`) -> IMM apply (`apply`) -> outcome (`outcome`) -> sinks (`sinks`).
"""

__version__ = "0.1.0"
