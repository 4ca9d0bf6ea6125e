#!/usr/bin/env python3
"""Bridged-call load harness: CPU per bridged call-second (RTP relay, G.711 and Opus
transcoding) and per conference participant-second, with every recording checked.

Run through tests/load/bridged.sh (see --help). Python 3.11, standard library only; reuses the
plain load harness (procs.py, sipp.py, audio.py, loadtest.py) read-only.

Each mode starts a release `callmux serve` on 127.0.2.1 and, where it bridges, a callee on
127.0.2.3:5080; SIPp (tests/sipp/uac_tone.xml) from 127.0.2.2 places N calls (-m N -l N -r R),
each streaming S seconds of a 440 Hz µ-law tone. Modes:

- `relay`: callee = SIPp UAS (tests/sipp/uas_tone.xml) answering PCMU with a 1000 Hz tone:
  same codec on both legs, callmux relays RTP (checked: every `bridged` log line says
  `relay=true`).
- `pcma`: the same UAS answering PCMA: G.711 µ-law ↔ A-law transcoding through 16 kHz.
- `opus`: callee = `callmux answer --codec opus --tone 1000`: PCMU ↔ Opus transcoding.
- `single`: no bridge (the same `record channels:2` NCCO and a `wait`), the baseline of one
  recorded leg, so the bridge's own share can be read off.
- `conference`: callers join `conversation`s with `record: true`, --room-size callers per
  room (room by order of arrival, from a tiny answer-URL server in this process).

The NCCO of the bridged modes is `record channels:2` then `connect` to the callee, so channel 1
must hold the caller's 440 Hz and channel 2 the callee's 1000 Hz; each conference recording must
hold one channel per participant, each with the caller tone. callmux's own CPU (utime+stime from
/proc) is sampled for the whole run, from idle-and-ready until every recording is final; the
callee and SIPp are measured apart. Every wait is bounded; every process started here is
stopped on exit (normal, error, SIGINT/SIGTERM/SIGHUP).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
import itertools
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import procs
from audio import make_tone
from loadtest import build_callmux, default_target_dir, fmt, git_rev, machine_info, make_scenario
from procs import CLEANUPS, Sampler, cleanup, log, proc_cpu_s, proc_status_kb, start, stop_child
from procs import wait_for
from servers import healthz, port_free, sidecar_states
from sipp import TAIL_MS, run_sipp

REPO = Path(__file__).resolve().parents[2]
UAS_SCENARIO = REPO / "tests" / "sipp" / "uas_tone.xml"
SERVER_IP = "127.0.2.1"
UAC_IP = "127.0.2.2"
CALLEE_IP = "127.0.2.3"
ANSWER_IP = "127.0.2.4"
CALLEE_PORT = 5080
CALLEE_MEDIA_PORT = 18000
CALLER_HZ = 440
CALLEE_HZ = 1000
MODES = ("single", "relay", "pcma", "opus", "conference")
MAX_CALLS = 200
MAX_SECONDS = 60
# Windows of a channel whose dominant frequency is another tone (the other party leaking in);
# the first and last window of a leg may straddle silence and noise, so a couple are allowed.
MAX_WRONG_WINDOWS = 2


def loadavg() -> str:
    """The 1/5/15 min load averages, as `uptime` prints them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def make_alaw_tone(out: Path, hz: int, seconds: float) -> Path:
    """Raw 8 kHz A-law tone made by sox (whole periods, so SIPp can loop it seamlessly)."""
    p = out / f"tone{hz}_{seconds:g}s.al"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "al", str(p), "synth",
                    f"{seconds}", "sine", str(hz), "vol", "0.5"], check=True, timeout=60)
    return p


def uas_scenario(out: Path, tone: Path, pt: int, name: str) -> Path:
    """tests/sipp/uas_tone.xml with its placeholders filled (answer at once)."""
    text = (UAS_SCENARIO.read_text().replace("{{TONE}}", str(tone))
            .replace("{{CODEC_PT}}", str(pt)).replace("{{CODEC_NAME}}", name)
            .replace("{{RING_MS}}", "0"))
    # SIPp 3.6 refuses an optional <recv> right before a <nop> ("without a mandatory
    # message"); the ACK of a 2xx always comes, so it is mandatory in our copy.
    text = text.replace('<recv request="ACK" optional="true"', '<recv request="ACK"')
    if "{{" in text:
        sys.exit(f"unfilled placeholder in {UAS_SCENARIO}")
    p = out / f"uas_tone_{pt}.xml"
    p.write_text(text)
    return p


class RoomServer(http.server.ThreadingHTTPServer):
    """Answer URL for the conference mode: the k-th call joins room k // room_size."""

    def __init__(self, addr, room_size: int):
        super().__init__(addr, RoomHandler)
        self.room_size = room_size
        self.counter = itertools.count()
        self.lock = threading.Lock()


class RoomHandler(http.server.BaseHTTPRequestHandler):
    """GET /answer → a conversation NCCO with record: true."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        with self.server.lock:
            k = next(self.server.counter)
        room = k // self.server.room_size
        body = json.dumps([{"action": "conversation", "name": f"room{room}",
                            "record": True}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_a):
        pass


def start_callee(mode: str, args, d: Path, binary: Path) -> tuple[subprocess.Popen | None, str]:
    """The party `connect` dials, answering N calls; returns it and its SIP URI."""
    uri = f"sip:bob@{CALLEE_IP}:{CALLEE_PORT}"
    if mode in ("single", "conference"):
        return None, uri
    if not port_free(CALLEE_IP, CALLEE_PORT):
        sys.exit(f"{CALLEE_IP}:{CALLEE_PORT} is busy: another run? stop it first")
    limit = int(args.calls / args.cps + args.duration + 120)
    logf = open(d / "callee.log", "wb")
    if mode == "opus":
        cmd = [str(binary), "answer", "--bind", f"{CALLEE_IP}:{CALLEE_PORT}", "--codec", "opus",
               "--tone", str(CALLEE_HZ), "--calls", str(args.calls)]
    else:
        if mode == "relay":
            tone, _ = make_tone(d, CALLEE_HZ, 1)
            scen = uas_scenario(d, tone, 0, "PCMU/8000")
        else:
            scen = uas_scenario(d, make_alaw_tone(d, CALLEE_HZ, 1), 8, "PCMA/8000")
        cmd = ["sipp", "-sf", str(scen), "-i", CALLEE_IP, "-p", str(CALLEE_PORT),
               "-mi", CALLEE_IP, "-mp", str(CALLEE_MEDIA_PORT), "-m", str(args.calls),
               "-nostdin", "-trace_err", "-error_file", str(d / "callee_errors.log"),
               "-timeout", f"{limit}s", "-timeout_error"]
    (d / "callee_cmd.txt").write_text(" ".join(cmd) + "\n")
    p = start(cmd, cwd=d, stdout=logf, stderr=subprocess.STDOUT)
    CLEANUPS.append(lambda: (stop_child(p, grace=5.0), logf.close()))
    time.sleep(0.5)
    if p.poll() is not None:
        sys.exit(f"the callee exited at start-up; see {d / 'callee.log'}")
    return p, uri


def write_config(d: Path, args, mode: str) -> Path:
    """Server config: no INVITE rate limit (SIPp is one source), a conference channel per
    participant."""
    cfg = d / "callmux.toml"
    cfg.write_text("[sip]\ninvite_rate = 0.0\n\n[recording]\n"
                   f"conference_channels = {min(32, args.room_size) if mode == 'conference' else 8}\n")
    return cfg


def start_server(mode: str, args, d: Path, binary: Path, callee_uri: str):
    """callmux serve for one mode; returns (process, answer-URL server or None)."""
    for port, kind in ((5060, socket.SOCK_DGRAM), (5060, socket.SOCK_STREAM),
                       (8080, socket.SOCK_STREAM)):
        if not port_free(SERVER_IP, port, kind):
            sys.exit(f"{SERVER_IP}:{port} is busy: another bridged run? stop it first")
    rtp_hi = 20000 + max(1000, 6 * args.calls + 200)
    cmd = [str(binary), "serve", "--config", str(write_config(d, args, mode)),
           "--sip", f"{SERVER_IP}:5060", "--http", f"{SERVER_IP}:8080",
           "--rtp-ports", f"20000-{rtp_hi}", "--recordings", str(d / "recordings"),
           "--data", str(d / "data"), "--max-calls", str(args.calls + 100), "--no-dispatcher"]
    rooms = None
    if mode == "conference":
        rooms = RoomServer((ANSWER_IP, 0), args.room_size)
        threading.Thread(target=rooms.serve_forever, daemon=True).start()
        CLEANUPS.append(rooms.shutdown)
        cmd += ["--answer-url", f"http://{ANSWER_IP}:{rooms.server_address[1]}/answer"]
    else:
        record = {"action": "record", "channels": 2}
        if mode == "single":
            ncco = [record, {"action": "wait", "timeout": 7200}]
        else:
            ncco = [record, {"action": "connect",
                             "endpoint": [{"type": "sip", "uri": callee_uri}]}]
        (d / "ncco.json").write_text(json.dumps(ncco))
        cmd += ["--ncco", str(d / "ncco.json")]
    (d / "server_cmd.txt").write_text(" ".join(cmd) + "\n")
    logf = open(d / "server.log", "wb")
    srv = start(cmd, stdout=subprocess.DEVNULL, stderr=logf,
                env={**os.environ, "CALLMUX_LOG": "info"})
    CLEANUPS.append(lambda: (stop_child(srv, grace=20.0), logf.close()))
    if not wait_for(lambda: healthz(SERVER_IP) or srv.poll() is not None, 30):
        sys.exit(f"callmux did not become ready; see {d / 'server.log'}")
    if srv.poll() is not None:
        sys.exit(f"callmux exited at start-up; see {d / 'server.log'}")
    return srv, rooms


def presence(ch: dict, hz: float, expect_ms: float) -> dict:
    """How much of `expect_ms` of tone `hz` one channel holds (audio.py's measure, any
    channel): energy of the windows whose dominant frequency is the tone, relative to the
    channel's own median tone level; windows dominated by another frequency are `wrong`."""
    tol = max(5.0, hz * 0.02)
    tone_w = [w for w in ch["windows"]
              if w["dominant_hz"] is not None and abs(w["dominant_hz"] - hz) <= tol]
    wrong = sum(1 for w in ch["windows"]
                if w["dominant_hz"] is not None and abs(w["dominant_hz"] - hz) > tol)
    ref = statistics.median(w["rms_dbfs"] for w in tone_w) if tone_w else -120.0
    present = sum(100 * min(1.0, 10 ** ((w["rms_dbfs"] - ref) / 10)) for w in tone_w)
    dom = ch["dominant_hz"]
    return {"pct": min(present, expect_ms) / expect_ms * 100, "level_dbfs": ref,
            "wrong": wrong, "dominant_ok": dom is not None and abs(dom - hz) <= tol}


def check_recording(binary: Path, wav: Path, mode: str, args, tone_dbfs: float) -> dict:
    """Inspects one recording and says whether each party's tone is where it belongs."""
    r = subprocess.run([str(binary), "inspect", "--json", str(wav)], capture_output=True,
                       timeout=300)
    try:
        if r.returncode != 0:
            raise ValueError(r.stderr.decode(errors="replace")[-300:])
        doc = json.loads(r.stdout)
        a, side = doc["analysis"], doc.get("sidecar") or {}
    except (ValueError, KeyError) as e:
        return {"file": str(wav), "ok": False, "why": f"unreadable: {e}", "pcts": [0.0],
                "bridged_s": 0.0, "duration_s": 0.0}
    expect_ms = args.duration * 1000
    chans = a["per_channel"]
    why = []
    pcts = []
    if mode == "conference":
        legs = [leg for c in side.get("channel_map", []) for leg in c.get("legs", [])]
        want_ch = min(len(legs), 32)
        if a["channels"] < want_ch or not legs:
            why.append(f"{a['channels']} channels for {len(legs)} participants")
        for ch in chans[:want_ch]:
            p = presence(ch, CALLER_HZ, expect_ms)
            pcts.append(p["pct"])
            if not p["dominant_ok"] or p["wrong"] > MAX_WRONG_WINDOWS:
                why.append(f"ch{ch['channel']} dominant {ch['dominant_hz']}, "
                           f"{p['wrong']} wrong windows")
        bridged_s = sum(((leg.get("left_ms") or leg["joined_ms"]) - leg["joined_ms"]) / 1000
                        for leg in legs)
    else:
        want = [CALLER_HZ] + ([] if mode == "single" else [CALLEE_HZ])
        if len(chans) != 2:
            why.append(f"{len(chans)} channels")
        for ch, hz in zip(chans, want):
            p = presence(ch, hz, expect_ms)
            pcts.append(p["pct"])
            if not p["dominant_ok"] or p["wrong"] > MAX_WRONG_WINDOWS:
                why.append(f"ch{ch['channel']} dominant {ch['dominant_hz']} (want {hz}), "
                           f"{p['wrong']} wrong windows")
            if hz == CALLER_HZ and abs(p["level_dbfs"] - tone_dbfs) > 1.0:
                why.append(f"ch1 level {p['level_dbfs']:.1f} dBFS, tone {tone_dbfs:.1f}")
        if mode == "single" and len(chans) > 1 and chans[1]["voiced_ms"]:
            why.append("ch2 not silent without a callee")
        # The leg `connect` placed (role `participant` in the sidecar).
        callee = [leg for c in side.get("channel_map", []) for leg in c.get("legs", [])
                  if leg.get("role") != "caller"]
        bridged_s = sum(((leg.get("left_ms") or leg["joined_ms"]) - leg["joined_ms"]) / 1000
                        for leg in callee)
        if mode != "single" and not callee:
            why.append("no callee leg in the sidecar")
    if min(pcts, default=0.0) < args.min_audio:
        why.append(f"audio present {min(pcts, default=0.0):.2f} % < {args.min_audio} %")
    return {"file": str(wav), "ok": not why, "why": "; ".join(why), "pcts": pcts,
            "bridged_s": bridged_s, "duration_s": a["duration_ms"] / 1000}


def analyse(binary: Path, files: list[Path], mode: str, args, tone_dbfs: float,
            expected: int) -> dict:
    """Checks every recording (nproc at a time); missing ones count as bad."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        res = list(ex.map(lambda f: check_recording(binary, f, mode, args, tone_dbfs), files))
    pcts = [p for r in res for p in r["pcts"]]
    bad = [r for r in res if not r["ok"]]
    return {"files": len(res), "expected": expected, "bad": len(bad) + max(0, expected - len(res)),
            "why": [f"{Path(r['file']).name}: {r['why']}" for r in bad[:5]],
            "audio_min": min(pcts, default=0.0),
            "audio_mean": statistics.fmean(pcts) if pcts else 0.0,
            "bridged_s": sum(r["bridged_s"] for r in res),
            "recorded_s": sum(r["duration_s"] for r in res)}


def child_cpu_s(p: subprocess.Popen | None) -> float:
    """CPU seconds of a finished child (from its rusage), NaN if unknown."""
    if p is None:
        return float("nan")
    if p.poll() is None:
        try:
            return proc_cpu_s(p.pid)
        except OSError:
            return float("nan")
    return getattr(p, "cpu_s", float("nan"))


def wait_reaped(p: subprocess.Popen, timeout: float) -> None:
    """Waits (bounded) for a child to exit, keeping its CPU time; stops it if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(st)
            p.cpu_s = ru.ru_utime + ru.ru_stime
            return
        time.sleep(0.2)
    log("the callee did not exit after its calls; stopping it")
    p.cpu_s = proc_cpu_s(p.pid)
    stop_child(p, grace=5.0)


def run_mode(mode: str, args, binary: Path, out: Path, scenario: Path,
             tone_dbfs: float) -> dict:
    """One mode: callee, server, SIPp, wait for the recordings, measure, check."""
    d = out / mode
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    load_before = loadavg()
    callee, uri = start_callee(mode, args, d, binary)
    srv, rooms = start_server(mode, args, d, binary, uri)
    log(f"{mode}: callmux pid {srv.pid}, callee {callee.pid if callee else '-'}")
    sampler = Sampler(srv.pid)
    cpu0, rss0 = proc_cpu_s(srv.pid), proc_status_kb(srv.pid, "VmRSS")
    sampler.start()
    sipp_args = types.SimpleNamespace(calls=args.calls, cps=args.cps, duration=args.duration)
    sipp = run_sipp(sipp_args, d, scenario, f"{SERVER_IP}:5060", UAC_IP, 5070)
    rec_root = d / "recordings"
    wait_for(lambda: sum(1 for _, s in sidecar_states(rec_root) if s == "recording") == 0
             and any(rec_root.rglob("*.wav")), 60, 0.5)
    if srv.poll() is not None:
        sys.exit(f"callmux exited during the run ({srv.returncode}); see {d / 'server.log'}")
    cpu_s = proc_cpu_s(srv.pid) - cpu0
    hwm = proc_status_kb(srv.pid, "VmHWM")
    sampler.halt.set()
    peak_pct, busy = sampler.peak_cpu_pct(), sampler.machine_busy_pct()
    if callee is not None:
        wait_reaped(callee, 30)
    stop_child(srv, grace=20.0)
    if rooms:
        rooms.shutdown()
    load_after = loadavg()
    text = (d / "server.log").read_text(errors="replace")
    relay = text.count("relay=true")
    transcode = text.count("relay=false")
    files = sorted(rec_root.rglob("*.wav"))
    expected = (math.ceil(sipp["ok"] / args.room_size) if mode == "conference"
                else sipp["ok"])
    rec = analyse(binary, files, mode, args, tone_dbfs, expected)
    want_relay = {"relay": (sipp["ok"], 0), "pcma": (0, sipp["ok"]), "opus": (0, sipp["ok"])}
    path_ok = want_relay.get(mode, (0, 0)) == (relay, transcode)
    res = {"mode": mode, "cpu_s": cpu_s, "hwm_kb": hwm, "rss0_kb": rss0,
           "peak_cpu_pct": peak_pct, "machine_busy_pct": busy,
           "callee_cpu_s": child_cpu_s(callee), "load_before": load_before,
           "load_after": load_after, "relay_lines": relay, "transcode_lines": transcode,
           "path_ok": path_ok, "warnings": text.count(" WARN "),
           "errors": text.count(" ERROR "), "sipp": sipp, "recordings": rec}
    if args.discard_recordings:
        shutil.rmtree(rec_root, ignore_errors=True)
    log(f"{mode}: {sipp['ok']} ok / {sipp['failed']} failed, CPU {cpu_s:.2f} s, "
        f"{rec['bad']} bad recordings, load {load_before} -> {load_after}")
    return res


def rows(m: dict, args) -> dict[str, str]:
    """The table rows of one mode."""
    s, r = m["sipp"], m["recordings"]
    tone_s = s["ok"] * args.duration
    per_tone = m["cpu_s"] / tone_s * 1000 if tone_s else float("nan")
    per_bridged = m["cpu_s"] / r["bridged_s"] * 1000 if r["bridged_s"] else float("nan")
    per_rec = m["cpu_s"] / r["recorded_s"] * 1000 if r["recorded_s"] else float("nan")
    active = max(1, s["peak_concurrent"])
    path = {"relay": "relay", "pcma": "transcode", "opus": "transcode"}.get(m["mode"], "-")
    return {
        "calls ok / failed": f"{s['ok']} / {s['failed']}",
        "failure kinds": ", ".join(f"{k} {v}" for k, v in s["failure_kinds"].items()) or "-",
        "SIP retransmissions (SIPp)": str(s["retrans"]),
        "peak concurrent calls": str(s["peak_concurrent"]),
        "media path (bridged log lines)": (f"{path}: {m['relay_lines']} relay / "
                                           f"{m['transcode_lines']} transcode"
                                           + ("" if m["path_ok"] else " (WRONG)")),
        "callmux CPU s (utime+stime)": fmt(m["cpu_s"]),
        "CPU ms per call-second (ok x S)": fmt(per_tone, ".3f"),
        "CPU ms per bridged/participant-second": fmt(per_bridged, ".3f"),
        "CPU ms per recorded second": fmt(per_rec, ".3f"),
        "peak CPU, % of one core (5 s)": fmt(m["peak_cpu_pct"], ".0f"),
        "peak RSS (VmHWM) MiB": fmt(m["hwm_kb"] / 1024, ".1f"),
        "RSS per call KiB ((HWM-idle)/peak)": fmt((m["hwm_kb"] - m["rss0_kb"]) / active, ".0f"),
        "recordings found / expected / bad": (f"{r['files']} / {r['expected']} / {r['bad']}"),
        "audio present min / mean % (every channel)": (f"{fmt(r['audio_min'])} / "
                                                       f"{fmt(r['audio_mean'], '.3f')}"),
        "callee CPU s (context)": fmt(m["callee_cpu_s"]),
        "SIPp caller CPU s (context)": fmt(s["cpu_s"]),
        "machine busy, cores (all procs)": fmt(m["machine_busy_pct"] / 100),
        "load avg before -> after": f"{m['load_before']} -> {m['load_after']}",
        "server WARN / ERROR lines": f"{m['warnings']} / {m['errors']}",
    }


def table(results: list[dict], args) -> str:
    """One markdown table, modes side by side."""
    cols = [rows(m, args) for m in results]
    head = ["metric"] + [m["mode"] for m in results]
    body = [[k] + [c[k] for c in cols] for k in cols[0]]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in body])


def problems_of(m: dict, args) -> list[str]:
    """What makes a mode's run fail --check."""
    s, r, out = m["sipp"], m["recordings"], []
    if s["failed"] or s["ok"] != args.calls:
        out.append(f"{m['mode']}: {s['failed']} failed calls ({s['ok']} of {args.calls} ok)")
    if r["bad"]:
        out.append(f"{m['mode']}: {r['bad']} bad recordings: {r['why']}")
    if not m["path_ok"]:
        out.append(f"{m['mode']}: media path wrong ({m['relay_lines']} relay, "
                   f"{m['transcode_lines']} transcode)")
    return out


def main() -> int:
    """Parses the command line, runs each mode, prints the table."""
    ap = argparse.ArgumentParser(
        prog="tests/load/bridged.sh",
        description="CPU per bridged call-second (relay, PCMA/Opus transcoding) and per "
        "conference participant-second, every recording checked.")
    ap.add_argument("--mode", action="append", choices=MODES,
                    help="repeatable (default: all, in the order single relay pcma opus "
                    "conference)")
    ap.add_argument("--calls", type=int, default=50, help=f"N concurrent calls (≤ {MAX_CALLS})")
    ap.add_argument("--duration", type=float, default=20,
                    help=f"S seconds of tone per call (≤ {MAX_SECONDS})")
    ap.add_argument("--cps", type=float, default=None, help="calls per second (default N/5, "
                    "at least 10)")
    ap.add_argument("--room-size", type=int, default=10,
                    help="conference: callers per conversation (≤ 32, one channel each)")
    ap.add_argument("--min-audio", type=float, default=99.0,
                    help="a channel with less of its tone counts as bad (%%)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 on any failed call, bad recording or wrong media path")
    ap.add_argument("--out", type=Path, help="output directory (default /tmp/callmux-bridged-*)")
    ap.add_argument("--bin", help="use this callmux binary instead of building")
    ap.add_argument("--src", type=Path, default=REPO, help="source tree to build")
    ap.add_argument("--target-dir", default=default_target_dir(),
                    help="cargo target dir of the release build (env CALLMUX_LOAD_TARGET_DIR)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run callmux, the callee and SIPp at this nice value, also on their "
                    "scheduler autogroups (as run.sh --nice; e.g. -19 on a shared machine); "
                    "root for < 0")
    ap.add_argument("--label", help="what to call the callmux build in the table "
                    "(default: git revision of --src)")
    ap.add_argument("--discard-recordings", action="store_true",
                    help="delete the recordings after the analysis")
    args = ap.parse_args()
    if not 1 <= args.calls <= MAX_CALLS or not 0 < args.duration <= MAX_SECONDS:
        ap.error(f"--calls must be 1..{MAX_CALLS} and --duration 0..{MAX_SECONDS}")
    if not 1 <= args.room_size <= 32:
        ap.error("--room-size must be 1..32")
    if args.cps is None:
        args.cps = max(10.0, math.ceil(args.calls / 5))
    modes = args.mode or list(MODES)
    for tool in ("sipp", "sox"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install sip-tester sox)")
    out = (args.out or Path(f"/tmp/callmux-bridged-{time.strftime('%Y%m%d-%H%M%S')}")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, procs.on_signal)
    if args.nice:
        procs.NICE = args.nice
        try:
            os.nice(args.nice)  # inherited by every process started from here on
        except PermissionError:
            sys.exit("--nice below 0 needs root")
        procs.set_priority("self")
    results = []
    try:
        machine = machine_info()
        binary = build_callmux(args)
        tone, tone_dbfs = make_tone(out, CALLER_HZ, args.duration)
        scenario = make_scenario(out, tone, int(args.duration * 1000) + TAIL_MS)
        for mode in modes:
            results.append(run_mode(mode, args, binary, out, scenario, tone_dbfs))
            cleanup()
    finally:
        cleanup()
    rev = args.label or git_rev(args.src)
    title = (f"{args.calls} calls x {args.duration:g} s, {args.cps:g} cps, caller {CALLER_HZ} Hz "
             f"µ-law, callee {CALLEE_HZ} Hz, room size {args.room_size}; callmux {rev}; "
             f"{machine['nproc']} x {machine['cpu']}; nice {machine['nice']}; {machine['date']}")
    text = title + "\n\n" + table(results, args) + "\n"
    print(text)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
         "machine": machine, "callmux_rev": rev, "results": results}, indent=2, default=str))
    log(f"results in {out}")
    if args.check:
        problems = [p for m in results for p in problems_of(m, args)]
        if problems:
            print("BRIDGED LOAD CHECK FAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        print("bridged load check passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
