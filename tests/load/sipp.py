"""Runs SIPp (tests/sipp/uac_tone.xml) for one server and reads its statistics CSV."""

from __future__ import annotations

import csv
import os
import subprocess
import time
from pathlib import Path

from procs import log, start, stop_child, udp_counters

SIPP_MEDIA_PORT = 16000
# The call stays up this long after the tone has been streamed, so the last packet is never
# cut by the BYE (SIPp starts rtp_stream and the pause timer at the same moment).
TAIL_MS = 500


def hms_us(v: str) -> float:
    """SIPp's HH:MM:SS:uuuuuu → milliseconds."""
    try:
        h, m, s, us = (int(x) for x in v.split(":"))
        return ((h * 60 + m) * 60 + s) * 1000 + us / 1000
    except ValueError:
        return float("nan")


def to_float(v: str | None) -> float:
    try:
        return float(v or "nan")
    except ValueError:
        return float("nan")


def run_sipp(args, workdir: Path, scenario: Path, target: str, ip: str, port: int) -> dict:
    """Places args.calls calls (-m N -l N -r R) from ip:port to target and returns SIPp's
    counters (last line of its statistics CSV), its CPU time and the kernel UDP drops."""
    ramp = args.calls / args.cps
    limit = int(ramp + args.duration + TAIL_MS / 1000 + 120)
    stat = workdir / "sipp_stat.csv"
    cmd = ["sipp", target, "-sf", str(scenario), "-s", "100",
           "-i", ip, "-p", str(port), "-mi", ip, "-mp", str(SIPP_MEDIA_PORT),
           "-m", str(args.calls), "-l", str(args.calls), "-r", f"{args.cps:g}",
           "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1",
           "-trace_screen", "-screen_file", str(workdir / "sipp_screen.log"),
           "-trace_err", "-error_file", str(workdir / "sipp_errors.log"),
           "-timeout", f"{limit}s", "-timeout_error"]
    (workdir / "sipp_cmd.txt").write_text(" ".join(cmd) + "\n")
    udp0 = udp_counters()
    log(f"SIPp: {args.calls} calls x {args.duration:g} s at {args.cps:g} cps -> {target}")
    t0 = time.monotonic()
    with open(workdir / "sipp_stdout.log", "wb") as so:
        p = start(cmd, cwd=workdir, stdout=so, stderr=subprocess.STDOUT)
        status, ru = None, None
        deadline = t0 + limit + 30
        while time.monotonic() < deadline:  # bounded: sipp's own -timeout ends it earlier
            pid, st, rusage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                status, ru = st, rusage
                p.returncode = os.waitstatus_to_exitcode(st)
                break
            time.sleep(0.2)
        if status is None:
            log("SIPp did not exit in time; stopping it")
            stop_child(p)
    wall = time.monotonic() - t0
    udp1 = udp_counters()
    res = {"exit_code": p.returncode, "wall_s": wall,
           "udp_rcvbuf_errors": udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0),
           "udp_in_errors": udp1.get("InErrors", 0) - udp0.get("InErrors", 0),
           "cpu_s": (ru.ru_utime + ru.ru_stime) if ru else float("nan")}
    rows = []
    if stat.exists():
        with open(stat, newline="", encoding="latin-1") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
    if not rows:
        res.update(ok=0, failed=args.calls, retrans=0, peak_concurrent=0, created=0,
                   failure_kinds={}, unexpected=0, rtd_avg_ms=float("nan"),
                   rtd_ge_200ms=0)
        return res
    last = rows[-1]

    def c(name: str) -> int:
        try:
            return int(last.get(name, "0") or 0)
        except ValueError:
            return 0

    kinds = {k[len("Failed"):-3]: c(k) for k in last
             if k and k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)"
             and c(k)}
    peak = 0
    for r in rows:
        try:
            peak = max(peak, int(r.get("CurrentCall") or 0))
        except ValueError:
            pass
    created = c("OutgoingCall(C)")
    # Calls never started (SIPp stopped by its timeout) count as failed too.
    res.update(ok=c("SuccessfulCall(C)"),
               failed=c("FailedCall(C)") + max(0, args.calls - created),
               retrans=c("Retransmissions(C)"),
               unexpected=c("OutOfCallMsgs(C)") + c("DeadCallMsgs(C)"),
               peak_concurrent=peak, created=created, failure_kinds=kinds,
               rtd_avg_ms=hms_us(last.get("ResponseTime1(C)", "")),
               rtd_ge_200ms=c("ResponseTimeRepartition1_>=200"),
               setup_rate_cps=to_float(last.get("CallRate(C)")))
    return res
