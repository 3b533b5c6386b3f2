"""ffmpeg and ffprobe run in a session of their own (recarchive/media/transcode.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

#: A caller in a process group of its own (so that the signal reaches nothing else),
#: which starts a tool and then signals its own group as a terminal's Ctrl-C does.
CALLER = """
import os, signal, sys, time
from pathlib import Path
from recarchive.media.transcode import ToolProcess
signal.signal(signal.SIGINT, lambda *_: None)  # a handler, as the CLI has (not inherited)
tool = [sys.executable, "-c", "import time, sys; time.sleep(1.0); sys.stdout.write('done')"]
with ToolProcess(tool, tool="python", label="probe", timeout_s=30) as process:
    child = process._process.pid
    print(os.getsid(child) != os.getsid(0), os.getpgid(child) != os.getpgrp())
    time.sleep(0.2)
    os.killpg(os.getpgrp(), signal.SIGINT)
    print(process.stdout.read().decode(), process.wait(Path("in.wav")))
"""


def test_a_sigint_to_the_callers_process_group_does_not_reach_the_tool(tmp_path: Path) -> None:
    """Ctrl-C at a terminal signals the foreground process group: the decode in hand goes on."""
    done = subprocess.run(
        [sys.executable, "-c", CALLER],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # the group signalled is the caller's and its children's only
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True True", "done 0"]
