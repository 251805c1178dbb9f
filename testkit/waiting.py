"""Polling with a timeout, instead of sleeping and hoping."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


# Without an explicit interval a wait polls every 50 ms at first, then less often, up to every
# 250 ms: a condition met at once is seen at once, and a minute-long wait (a log read or an
# InfluxDB query per poll) does not eat the CPU the parallel test workers share.
FIRST_INTERVAL = 0.05
LONGEST_INTERVAL = 0.25


def wait_until(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float | None = None,
    what: str = "",
) -> T:
    """Call ``predicate`` until it returns something truthy; return that, or raise."""
    deadline = time.monotonic() + timeout
    pause = FIRST_INTERVAL if interval is None else interval
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # the condition may not be checkable yet
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(pause)
        if interval is None:
            pause = min(pause * 1.25, LONGEST_INTERVAL)


def end_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30
) -> int:
    """Send ``sig``, wait up to ``timeout``, then SIGKILL; return the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
