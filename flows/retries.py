"""When a task is worth retrying: transient I/O only, never bad data (SPEC 9)."""

from __future__ import annotations


def transient_io(task, task_run, state) -> bool:  # noqa: ARG001 - Prefect's retry_condition_fn signature
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth retrying
        return False
    return False
