"""Process bookkeeping and /proc measurements for the load harness: children started in
their own session and stopped in order on exit, scheduler priority, CPU/RSS sampling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHILDREN: list[subprocess.Popen] = []
CLEANUPS: list = []
# --nice: applied to every process started from here on (see set_priority).
NICE = 0


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def on_signal(signum, _frame):
    """Turns SIGINT/SIGTERM/SIGHUP into SystemExit, so `finally` blocks clean up."""
    raise SystemExit(128 + signum)


def set_priority(pid: int | str) -> None:
    """Applies --nice to a process's scheduler autogroup. With autogroup scheduling (the
    default on desktop/VM kernels) every session competes as one group whatever its tasks'
    nice values, so the nice value must go on the group (/proc/PID/autogroup) as well."""
    if not NICE:
        return
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(NICE))
    except OSError as e:
        log(f"cannot set the autogroup nice of {pid}: {e}")


def start(cmd: list[str], **kw) -> subprocess.Popen:
    """Starts a child in its own session (Ctrl-C reaches only us; we stop it in order)."""
    p = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
    CHILDREN.append(p)
    set_priority(p.pid)
    return p


def stop_child(p: subprocess.Popen, sig=signal.SIGTERM, grace: float = 20.0) -> None:
    """Signals a child and waits `grace` seconds, then kills it."""
    if p.poll() is not None:
        return
    try:
        p.send_signal(sig)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)


def cleanup() -> None:
    """Runs the registered cleanups (newest first), then stops every child still running."""
    for fn in reversed(CLEANUPS):
        try:
            fn()
        except Exception as e:  # keep cleaning up the rest
            log(f"cleanup: {e}")
    CLEANUPS.clear()
    for p in CHILDREN:
        try:
            stop_child(p, grace=5.0)
        except Exception as e:
            log(f"cleanup: {e}")


def wait_for(pred, timeout: float, step: float = 0.1) -> bool:
    """Polls `pred` until it is true or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def proc_cpu_s(pid: int) -> float:
    """utime+stime of the whole process (all threads, live and exited), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def udp_counters() -> dict:
    """System-wide UDP counters from /proc/net/snmp (InErrors, RcvbufErrors, ...)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()
             if ln.startswith("Udp:")]
    if len(lines) < 2:
        return {}
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:])}


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class Sampler(threading.Thread):
    """Samples a pid's CPU seconds and RSS and the machine's busy time every 0.5 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float, int, float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        for _ in range(100_000):  # ≤ 14 h at 0.5 s
            try:
                b, t = machine_busy()
                self.samples.append((time.monotonic(), proc_cpu_s(self.pid),
                                     proc_status_kb(self.pid, "VmRSS"), b, t))
            except (OSError, ValueError, IndexError):
                return
            if self.halt.wait(0.5):
                return

    def peak_cpu_pct(self, window: float = 5.0) -> float:
        """Highest CPU use (% of one core) over any `window` seconds."""
        s, best, j = self.samples, 0.0, 0
        for i in range(len(s)):
            while j < len(s) and s[j][0] - s[i][0] < window:
                j += 1
            if j >= len(s):
                break
            best = max(best, (s[j][1] - s[i][1]) / (s[j][0] - s[i][0]) * 100)
        return best

    def machine_busy_pct(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        a, b = self.samples[0], self.samples[-1]
        return (b[3] - a[3]) / max(1, b[4] - a[4]) * 100 * os.cpu_count()
