"""The servers under test: callmux (built here) and Asterisk 16 (the peer in
/work/shared/peers/asterisk), each started on loopback, measured while SIPp drives it, stopped,
and its recordings analysed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from audio import analyse_all
from procs import (CLEANUPS, Sampler, log, proc_cpu_s, proc_status_kb, start, stop_child,
                   wait_for)
from sipp import run_sipp

ASTERISK_PEER = Path(os.environ.get("CALLMUX_ASTERISK_PEER", "/work/shared/peers/asterisk"))
# Loopback addresses: callmux and its SIPp get their own (tests use 127.10-209.x.y), Asterisk's
# peer config binds 127.0.0.1:5080 and identifies the caller by 127.0.0.1.
CALLMUX_IP = "127.0.1.1"
CALLMUX_SIPP_IP = "127.0.1.2"
ASTERISK_IP = "127.0.0.1"
ASTERISK_SIP_PORT = 5080
ASTERISK_SIPP_PORT = 15070
ASTERISK_RTP_BASE = 40000  # outside callmux's default 20000-29999 used by parallel test servers


def healthz(ip: str) -> bool:
    """Whether callmux on `ip` answers GET /healthz with 200."""
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def port_free(ip: str, port: int, kind=socket.SOCK_DGRAM) -> bool:
    """Whether `ip:port` can be bound (another run or server would hold it)."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:  # as the server does; TIME_WAIT is no conflict
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def sidecar_states(root: Path) -> list[tuple[Path, str]]:
    """Every callmux sidecar under `root` with its `state`."""
    out = []
    for j in root.rglob("*.json"):
        try:
            out.append((j, json.loads(j.read_text()).get("state", "?")))
        except (OSError, ValueError):
            out.append((j, "?"))
    return out


def measure(sampler: Sampler, pid: int, cpu0: float, rss0: int) -> dict:
    """CPU seconds since `cpu0`, peak RSS and the sampler's peaks, for a running server."""
    cpu1 = proc_cpu_s(pid)
    return {"cpu_s": cpu1 - cpu0, "hwm_kb": proc_status_kb(pid, "VmHWM"), "rss0_kb": rss0,
            "peak_cpu_pct": sampler.peak_cpu_pct(),
            "machine_busy_pct": sampler.machine_busy_pct()}


def fresh_dir(d: Path, marker: str) -> None:
    """Creates `d`, emptying it first if an earlier run of this harness left it (it has
    `marker`), so old recordings never count again; refuses any other non-empty directory."""
    if d.exists() and any(d.iterdir()):
        if not (d / marker).exists():
            sys.exit(f"{d} exists and was not made by this harness; choose another --out")
        shutil.rmtree(d)
    d.mkdir(parents=True)


def run_callmux(args, binary: Path, out: Path, scenario: Path, tone_dbfs: float) -> dict:
    """Starts callmux, drives it with SIPp, waits for every recording, stops it, analyses."""
    d = out / "callmux"
    fresh_dir(d, "server_cmd.txt")
    for port, kind in ((5060, socket.SOCK_DGRAM), (5060, socket.SOCK_STREAM),
                       (8080, socket.SOCK_STREAM)):
        if not port_free(CALLMUX_IP, port, kind):
            sys.exit(f"{CALLMUX_IP}:{port} is busy: another load run? stop it first")
    rtp_hi = 20000 + max(1000, 4 * args.calls + 200)
    cmd = [str(binary), "serve", "--sip", f"{CALLMUX_IP}:5060", "--http", f"{CALLMUX_IP}:8080",
           "--rtp-ports", f"20000-{rtp_hi}", "--recordings", str(d / "recordings"),
           "--data", str(d / "data"), "--max-calls", str(max(2000, args.calls + 100)),
           # SIPp is one trusted source sending up to 200 INVITEs/s; the per-source flood
           # limit (default 20/s) would answer most of them 503. Asterisk has no such limit.
           "--invite-rate", "0"]
    wrapped = bool(args.server_wrapper)
    if wrapped:  # a profiler running the server in-process (valgrind): slow start and stop
        cmd = shlex.split(args.server_wrapper.replace("{out}", str(d))) + cmd
    (d / "server_cmd.txt").write_text(" ".join(cmd) + "\n")
    logf = open(d / "server.log", "wb")
    srv = start(cmd, stdout=subprocess.DEVNULL, stderr=logf,
                env={**os.environ, "CALLMUX_LOG": args.log})
    grace = 300.0 if wrapped else 20.0
    CLEANUPS.append(lambda: stop_child(srv, grace=grace))
    if not wait_for(lambda: healthz(CALLMUX_IP) or srv.poll() is not None,
                    300 if wrapped else 30):
        sys.exit(f"callmux did not become ready; see {d / 'server.log'}")
    if srv.poll() is not None:
        sys.exit(f"callmux exited at start-up; see {d / 'server.log'}")
    log(f"callmux pid {srv.pid} on {CALLMUX_IP}:5060, RTP 20000-{rtp_hi}")
    sampler = Sampler(srv.pid)
    cpu0, rss0 = proc_cpu_s(srv.pid), proc_status_kb(srv.pid, "VmRSS")
    sampler.start()
    sipp = run_sipp(args, d, scenario, f"{CALLMUX_IP}:5060", CALLMUX_SIPP_IP, 5070)
    # Every recording finalized (sidecar state leaves "recording").
    rec_root = d / "recordings"
    wait_for(lambda: sum(1 for _, s in sidecar_states(rec_root) if s == "recording") == 0,
             60, 0.5)
    if srv.poll() is not None:
        sys.exit(f"callmux exited during the run (status {srv.returncode}); "
                 f"see {d / 'server.log'}")
    m = measure(sampler, srv.pid, cpu0, rss0)
    sampler.halt.set()
    stop_child(srv, grace=grace)
    logf.close()
    text = (d / "server.log").read_text(errors="replace")
    m["warnings"] = text.count(" WARN ")
    m["errors"] = text.count(" ERROR ")
    m["server_exit"] = srv.returncode
    # RTP packets each call task received (its "call ended" line), vs what SIPp streams.
    pk = [int(x.split("=", 1)[1]) for x in text.split() if x.startswith("packets=")]
    m["rtp_packets"] = {"calls": len(pk), "min": min(pk, default=0),
                        "mean": statistics.fmean(pk) if pk else 0.0,
                        "expected": round(args.duration * 50)}
    files = sorted(p for p in rec_root.rglob("*.wav"))
    m["recordings"] = analyse_all(args, binary, files, tone_dbfs, True, sipp["ok"])
    m["sipp"] = sipp
    return m


def asterisk_rx(conf: Path, command: str) -> str:
    """Runs one CLI command on the private Asterisk (`asterisk -C conf -rx`)."""
    r = subprocess.run(["asterisk", "-C", str(conf), "-rx", command], capture_output=True,
                       text=True, timeout=30)
    return r.stdout


def run_asterisk(args, binary: Path, out: Path, scenario: Path, tone_dbfs: float) -> dict:
    """The same workload against Asterisk 16 (extension 100: MixMonitor, nothing sent back)."""
    log(f"installing Asterisk 16 with {ASTERISK_PEER / 'install.sh'} (idempotent)")
    subprocess.run(["bash", str(ASTERISK_PEER / "install.sh")], check=True, timeout=1800,
                   stdout=subprocess.DEVNULL)
    d = out / "asterisk"
    fresh_dir(d, "sipp_cmd.txt")
    if not port_free(ASTERISK_IP, ASTERISK_SIP_PORT):
        sys.exit(f"{ASTERISK_IP}:{ASTERISK_SIP_PORT} is busy: another Asterisk running?")
    conf = d / "etc" / "asterisk.conf"
    run_sh = ASTERISK_PEER / "run.sh"
    CLEANUPS.append(lambda: stop_asterisk(run_sh, d))
    subprocess.run(["bash", str(run_sh), "start", str(d)], check=True, timeout=60)
    pid = int((d / "run" / "asterisk.pid").read_text().strip())
    # The peer's rtp.conf has 1000 ports (500 calls); size the range for N calls here and in
    # a range no parallel callmux test server uses.
    hi = ASTERISK_RTP_BASE + max(1000, 4 * args.calls + 200)
    (d / "etc" / "rtp.conf").write_text(
        f"[general]\nrtpstart = {ASTERISK_RTP_BASE}\nrtpend = {hi}\n")
    asterisk_rx(conf, "core waitfullybooted")
    reload = asterisk_rx(conf, "module reload res_rtp_asterisk.so")
    if "reloaded successfully" not in reload and "request queued" not in reload:
        sys.exit(f"cannot apply the Asterisk RTP range: {reload.strip()}")
    log(f"asterisk pid {pid} on {ASTERISK_IP}:{ASTERISK_SIP_PORT}, RTP {ASTERISK_RTP_BASE}-{hi}")
    sampler = Sampler(pid)
    cpu0, rss0 = proc_cpu_s(pid), proc_status_kb(pid, "VmRSS")
    sampler.start()
    sipp = run_sipp(args, d, scenario, f"{ASTERISK_IP}:{ASTERISK_SIP_PORT}", ASTERISK_IP,
                    ASTERISK_SIPP_PORT)

    def no_channels() -> bool:
        t = asterisk_rx(conf, "core show channels count")
        return "0 active channels" in t

    wait_for(no_channels, 60, 0.5)
    rec = d / "rec"

    def sizes():
        return sorted((p.name, p.stat().st_size) for p in rec.glob("*.wav"))

    before = None
    for _ in range(60):  # MixMonitor closes its file on its own thread after hangup
        now = sizes()
        if now == before:
            break
        before = now
        time.sleep(0.5)
    m = measure(sampler, pid, cpu0, rss0)
    sampler.halt.set()
    stop_asterisk(run_sh, d)
    files = sorted(rec.glob("*.wav"))
    m["warnings"] = m["errors"] = 0
    m["recordings"] = analyse_all(args, binary, files, tone_dbfs, False, sipp["ok"])
    m["sipp"] = sipp
    m["rtp_range"] = f"{ASTERISK_RTP_BASE}-{hi}"
    return m


def stop_asterisk(run_sh: Path, d: Path) -> None:
    """Stops the Asterisk started in `d` (run.sh stop, then SIGKILL of that pid only)."""
    pidf = d / "run" / "asterisk.pid"
    if not pidf.exists():
        return
    pid = int(pidf.read_text().strip() or 0)
    subprocess.run(["bash", str(run_sh), "stop", str(d)], timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ours_alive() -> bool:
        try:
            return str(d) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    if not wait_for(lambda: not ours_alive(), 20, 0.2) and ours_alive():
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not ours_alive(), 10, 0.2)
    pidf.unlink(missing_ok=True)
