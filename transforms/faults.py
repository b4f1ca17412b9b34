"""Named pause points, so crash-safety tests can kill a real run at a known moment.

With ``QI_PAUSE_AT=<name>`` and ``QI_PAUSE_FILE=<path>`` set, a run reaching that point
creates the file and waits to be killed. Unset (always, outside tests), this is one
dictionary look-up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def checkpoint(name: str) -> None:
    if os.environ.get("QI_PAUSE_AT") != name:
        return
    Path(os.environ["QI_PAUSE_FILE"]).write_text(name)
    while True:  # the test kills the whole process group now
        time.sleep(1)
