#!/usr/bin/env python3
"""SIPp load harness: callmux (and optionally Asterisk 16) under the same recorded-call workload.

Run through tests/load/run.sh (see --help). Python 3.11, standard library only.

For each server under test it: starts the server on loopback, samples its CPU (utime+stime of
the whole process from /proc/PID/stat) and memory (VmHWM) while SIPp places N calls at R
calls/s, each streaming S seconds of a µ-law tone (tests/sipp/uac_tone.xml), then analyses
every recording with `callmux inspect --json` and prints one table.

Every wait is bounded in time, every loop in count; every process started here is stopped on
exit (normal, error, SIGINT/SIGTERM/SIGHUP).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import procs
from audio import make_tone
from procs import cleanup, log, set_priority
from servers import run_asterisk, run_callmux
from sipp import TAIL_MS

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "sipp" / "uac_tone.xml"
FORMAT_NOTE = ("Asterisk records mixed mono at 8 kHz (MixMonitor); callmux records per-leg "
               "channels at 16 kHz (split: caller sent / caller heard)")


def build_callmux(args) -> Path:
    """The callmux binary: --bin as given, or a release build of --src in --target-dir."""
    if args.bin:
        b = Path(args.bin).resolve()
        if not os.access(b, os.X_OK):
            sys.exit(f"--bin {b}: not an executable")
        return b
    target = Path(args.target_dir)
    log(f"building callmux (release) from {args.src} into {target}")
    t0 = time.monotonic()
    r = subprocess.run(["cargo", "build", "--release", "--locked", "-p", "callmux-server"],
                       cwd=args.src, env={**os.environ, "CARGO_TARGET_DIR": str(target)},
                       timeout=3600)
    if r.returncode != 0:
        sys.exit("cargo build failed")
    log(f"built in {time.monotonic() - t0:.0f} s")
    return target / "release" / "callmux"


def default_target_dir() -> str:
    """Its own target dir, so the build never waits on another cargo's lock."""
    if os.environ.get("CALLMUX_LOAD_TARGET_DIR"):
        return os.environ["CALLMUX_LOAD_TARGET_DIR"]
    if os.access("/work", os.W_OK):
        return "/work/target-load"
    return str(REPO / "target" / "load")


def make_scenario(out: Path, tone: Path, pause_ms: int) -> Path:
    """tests/sipp/uac_tone.xml with its {{TONE}} and {{PAUSE_MS}} placeholders filled."""
    text = SCENARIO.read_text().replace("{{TONE}}", str(tone)).replace(
        "{{PAUSE_MS}}", str(pause_ms))
    if "{{" in text:
        sys.exit(f"unfilled placeholder in {SCENARIO}")
    p = out / "uac_tone.xml"
    p.write_text(text)
    return p


def machine_info() -> dict:
    """What the numbers were measured on (and how busy it was)."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    try:
        autogroup = Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        autogroup = "-"
    return {"nproc": os.cpu_count(), "cpu": model, "nice": os.nice(0), "autogroup": autogroup,
            "ram_gib": round(mem_kb / 2 ** 20, 1),
            "kernel": platform.release(),
            "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def git_rev(src: Path) -> str:
    """Short revision of --src, `+dirty` when its crates differ from it."""
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--",
                                "crates", "Cargo.toml", "Cargo.lock"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return (rev or "?") + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def fmt(v, spec=".2f") -> str:
    """A number for the table, `-` when unknown."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def rows_for(m: dict, args) -> dict:
    """The table rows of one server: label → (text, number for the ratio column or None)."""
    s, r = m["sipp"], m["recordings"]
    per_cs = m["cpu_s"] / r["recorded_s"] * 1000 if r["recorded_s"] else float("nan")
    active = max(1, s["peak_concurrent"])
    tone_s = s["ok"] * args.duration
    pk = m.get("rtp_packets")
    rtp_pk = (f"{pk['min']} / {pk['mean']:.1f} / {pk['expected']}" if pk and pk["calls"]
              else "-")
    per_tone = m["cpu_s"] / tone_s * 1000 if tone_s else float("nan")
    return {
        "calls ok / failed": (f"{s['ok']} / {s['failed']}", None),
        "failure kinds": (", ".join(f"{k} {v}" for k, v in s["failure_kinds"].items()) or "-",
                          None),
        "SIP retransmissions (SIPp)": (str(s["retrans"]), None),
        "unexpected/dead-call msgs": (str(s["unexpected"]), None),
        "peak concurrent calls": (str(s["peak_concurrent"]), None),
        "INVITE->200 avg ms / >=200 ms": (f"{fmt(s['rtd_avg_ms'], '.1f')} / {s['rtd_ge_200ms']}",
                                          None),
        "server CPU s (utime+stime)": (fmt(m["cpu_s"]), m["cpu_s"]),
        "recorded call-seconds": (fmt(r["recorded_s"], ".0f"), None),
        "CPU ms per recorded call-second": (fmt(per_cs, ".3f"), per_cs),
        "CPU ms per call-second of tone (ok x S)": (fmt(per_tone, ".3f"), per_tone),
        "peak CPU, % of one core (5 s)": (fmt(m["peak_cpu_pct"], ".0f"), m["peak_cpu_pct"]),
        "peak RSS (VmHWM) MiB": (fmt(m["hwm_kb"] / 1024, ".1f"), m["hwm_kb"]),
        "RSS per call KiB ((HWM-idle)/peak)": (fmt((m["hwm_kb"] - m["rss0_kb"]) / active, ".0f"),
                                              (m["hwm_kb"] - m["rss0_kb"]) / active),
        "kernel UDP drops (rcvbuf, system-wide)": (str(s.get("udp_rcvbuf_errors", "-")), None),
        "RTP pkts/call at server min / mean / sent": (rtp_pk, None),
        "recordings found / expected": (f"{r['files']} / {r['expected']}", None),
        f"recordings < {args.min_audio:g}% audio or wrong": (str(r["below_threshold"]), None),
        "audio present min / mean %": (f"{fmt(r['audio_min'], '.2f')} / "
                                       f"{fmt(r['audio_mean'], '.3f')}", None),
        "voiced time min / mean %": (f"{fmt(r['voiced_min'], '.2f')} / "
                                     f"{fmt(r['voiced_mean'], '.3f')}", None),
        "recording format": (r["format"], None),
        "SIPp CPU s (client, context)": (fmt(s["cpu_s"]), None),
        "machine busy, cores (all procs)": (fmt(m["machine_busy_pct"] / 100, ".2f"), None),
    }


def table(results: dict, args) -> str:
    """One markdown table, servers side by side, with Asterisk/callmux ratios if both ran."""
    names = list(results)
    cols = {n: rows_for(results[n], args) for n in names}
    keys = list(cols[names[0]])
    ratio = len(names) == 2
    head = ["metric"] + names + (["asterisk/callmux"] if ratio else [])
    body = []
    for k in keys:
        row = [k] + [cols[n][k][0] for n in names]
        if ratio:
            a, b = cols["callmux"][k][1], cols["asterisk"][k][1]
            row.append(f"{b / a:.2f}x" if a and b and not math.isnan(a) and not math.isnan(b)
                       else "")
        body.append(row)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    return "\n".join(out)


def main() -> int:
    """Parses the command line, runs each server under the workload, prints the table."""
    ap = argparse.ArgumentParser(
        prog="tests/load/run.sh",
        description="SIPp load test of callmux (optionally side by side with Asterisk 16).")
    ap.add_argument("--calls", type=int, default=100, help="N concurrent calls (-m N -l N)")
    ap.add_argument("--duration", type=float, default=30, help="S seconds of tone per call")
    ap.add_argument("--cps", type=float, default=None,
                    help="R calls per second (default: N/10, at least 10)")
    ap.add_argument("--peer", choices=["asterisk"], help="also run Asterisk 16 (MixMonitor)")
    ap.add_argument("--out", type=Path, help="output directory (default: /tmp/callmux-load-*)")
    ap.add_argument("--tone", type=int, default=1000, help="tone frequency in Hz")
    ap.add_argument("--min-audio", type=float, default=99.9,
                    help="a recording with less of the expected audio counts as bad (%%)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if any call failed or any recording is bad (smoke/CI)")
    ap.add_argument("--bin", help="use this callmux binary instead of building")
    ap.add_argument("--src", type=Path, default=REPO, help="source tree to build")
    ap.add_argument("--target-dir", default=default_target_dir(),
                    help="cargo target dir of the release build (env CALLMUX_LOAD_TARGET_DIR)")
    ap.add_argument("--label", help="what to call the callmux build in the table "
                    "(default: git revision of --src)")
    ap.add_argument("--log", default="info", help="CALLMUX_LOG for the server")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the servers and SIPp at this nice value, also on their scheduler "
                    "autogroups (e.g. -19 on a shared machine, so other sessions' work does "
                    "not decide the result); root for < 0")
    ap.add_argument("--server-wrapper", help="prefix for the callmux serve command, e.g. "
                    "'valgrind --tool=callgrind --callgrind-out-file={out}/callgrind.out' "
                    "({out} = the run's callmux directory); for profiling, not for numbers")
    ap.add_argument("--discard-recordings", action="store_true",
                    help="delete the recordings after the analysis (saves disk)")
    args = ap.parse_args()
    if args.calls < 1 or args.duration <= 0:
        ap.error("--calls and --duration must be positive")
    if args.cps is None:
        args.cps = max(10.0, math.ceil(args.calls / 10))
    for tool in ("sipp", "sox"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install sip-tester sox)")
    out = args.out or Path(f"/tmp/callmux-load-{time.strftime('%Y%m%d-%H%M%S')}")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, procs.on_signal)
    if args.nice:
        procs.NICE = args.nice
        try:
            os.nice(args.nice)  # inherited by every process started from here on
        except PermissionError:
            sys.exit("--nice below 0 needs root")
        set_priority("self")  # run.sh's Asterisk stays in our session (autogroup)
    try:
        machine = machine_info()
        binary = build_callmux(args)
        tone, tone_dbfs = make_tone(out, args.tone, args.duration)
        scenario = make_scenario(out, tone, int(args.duration * 1000) + TAIL_MS)
        results = {"callmux": run_callmux(args, binary, out, scenario, tone_dbfs)}
        if args.peer == "asterisk":
            results["asterisk"] = run_asterisk(args, binary, out, scenario, tone_dbfs)
        if args.discard_recordings:
            for sub in ("callmux/recordings", "asterisk/rec"):
                shutil.rmtree(out / sub, ignore_errors=True)
    finally:
        cleanup()
    rev = args.label or git_rev(args.src)
    title = (f"{args.calls} calls x {args.duration:g} s tone ({args.tone} Hz µ-law), "
             f"{args.cps:g} cps; callmux {rev}; "
             f"{machine['nproc']} x {machine['cpu']}, {machine['ram_gib']} GiB RAM; "
             f"load avg before {' '.join(machine['loadavg_before'])}; nice {machine['nice']}; "
             f"{machine['date']}")
    text = title + "\n\n" + table(results, args) + "\n"
    if args.peer:
        text += f"\nNote: {FORMAT_NOTE}. Ratios are asterisk / callmux.\n"
    print(text)
    (out / "table.md").write_text(text)
    summary = {"args": {k: (str(v) if isinstance(v, Path) else v)
                        for k, v in vars(args).items()},
               "machine": machine, "callmux_rev": rev, "results": results,
               "format_note": FORMAT_NOTE}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    log(f"results in {out}")
    if args.check:
        cm = results["callmux"]
        problems = []
        if cm["sipp"]["failed"] or cm["sipp"]["ok"] != args.calls:
            problems.append(f"{cm['sipp']['failed']} failed calls "
                            f"({cm['sipp']['ok']} of {args.calls} ok)")
        if cm["recordings"]["below_threshold"]:
            problems.append(f"{cm['recordings']['below_threshold']} recordings below "
                            f"{args.min_audio}% of the expected audio or wrong")
        if problems:
            print("LOAD CHECK FAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        print("load check passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
