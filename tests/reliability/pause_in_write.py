"""Test driver: ``iteralign run CONFIG``, frozen inside the Nth atomic write of a file named NAME.

    python pause_in_write.py NAME N MARKER CONFIG

The run's atomic writes (``run.atomic_write``, ``constitution.save``) write a temp file and then ``os.replace`` it
over the target. This driver wraps ``os.replace`` in this process only: at the Nth replace onto NAME it writes the
temp file's path to MARKER and sleeps, so a test can SIGKILL the run at exactly that point (temp file complete,
target not yet replaced). Nothing in the package is patched on disk; production code has no hook for this.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    name, nth, marker, config = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        if Path(dst).name == name:
            seen += 1
            if seen == nth:
                marker.write_text(str(src))
                time.sleep(600)  # the test kills us here
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    from iteralign.cli import app

    app(["run", config], standalone_mode=True)


if __name__ == "__main__":
    main()
