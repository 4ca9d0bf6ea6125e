"""The workload's audio: the µ-law tone SIPp streams, and how much of it each recording holds
(from `callmux inspect --json`)."""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import statistics
import subprocess
import time
from pathlib import Path

from procs import log

TONE_VOLUME = 0.5


def ulaw_decode(b: int) -> int:
    """G.711 µ-law byte → linear sample (to measure the tone file's own level)."""
    b = ~b & 0xFF
    t = ((b & 0x0F) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if (b & 0x80) else (t - 0x84)


def make_tone(out: Path, hz: int, seconds: float) -> tuple[Path, float]:
    """Raw 8 kHz µ-law tone made by sox (not by the code under test); returns its RMS dBFS."""
    p = out / f"tone{hz}_{seconds:g}s.ul"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", str(p), "synth",
                    f"{seconds}", "sine", str(hz), "vol", str(TONE_VOLUME)],
                   check=True, timeout=120)
    data = p.read_bytes()
    ms = sum(ulaw_decode(x) ** 2 for x in data) / max(1, len(data))
    return p, 10 * math.log10(ms / 32768 ** 2) if ms > 0 else -120.0


def analyse_one(binary: Path, wav: Path, hz: float, expect_ms: float, tone_dbfs: float,
                split: bool) -> dict:
    """Share of the expected tone present and correct in channel 1 of one recording.

    `voiced_pct`: voiced time of channel 1 (20 ms windows ≥ −50 dBFS) vs the tone length, as
    `callmux inspect` reports it. `audio_pct` (stricter): over the 100 ms windows whose dominant
    frequency is the tone, the energy present relative to the recording's own full-tone level
    (median window), so a lost 20 ms packet costs 20 ms even inside a voiced window. Windows
    with another dominant frequency count as missing.
    """
    r = subprocess.run([str(binary), "inspect", "--json", str(wav)], capture_output=True,
                       timeout=300)
    try:
        if r.returncode != 0:
            raise ValueError(r.stderr.decode(errors="replace")[-300:])
        a = json.loads(r.stdout)["analysis"]
    except (ValueError, KeyError) as e:  # unreadable recording: counts as empty and wrong
        return {"file": str(wav), "error": str(e), "audio_pct": 0.0, "voiced_pct": 0.0,
                "duration_ms": 0, "dominant_ok": False, "level_ok": False,
                "ch2_silent": True, "ok": False}
    chans = a["per_channel"]
    ch1 = chans[0]
    tol = max(5.0, hz * 0.02)
    tone_w = [w for w in ch1["windows"]
              if w["dominant_hz"] is not None and abs(w["dominant_hz"] - hz) <= tol]
    wrong = [w for w in ch1["windows"]
             if w["dominant_hz"] is not None and abs(w["dominant_hz"] - hz) > tol]
    ref = statistics.median(w["rms_dbfs"] for w in tone_w) if tone_w else -120.0
    present = sum(100 * min(1.0, 10 ** ((w["rms_dbfs"] - ref) / 10)) for w in tone_w)
    # Each window is 100 ms; the last one may be shorter, but it lies in the silent tail.
    audio_pct = min(present, expect_ms) / expect_ms * 100
    voiced_pct = min(ch1["voiced_ms"], expect_ms) / expect_ms * 100
    dom = ch1["dominant_hz"]
    dom_ok = dom is not None and abs(dom - hz) <= tol
    level_ok = abs(ref - tone_dbfs) <= 1.0
    ch2_silent = (not split) or len(chans) < 2 or chans[1]["voiced_ms"] == 0
    return {"file": str(wav), "duration_ms": a["duration_ms"], "channels": a["channels"],
            "sample_rate": a["sample_rate"], "voiced_ms": ch1["voiced_ms"],
            "voiced_pct": voiced_pct, "audio_pct": audio_pct, "dominant_hz": dom,
            "level_dbfs": ref, "wrong_windows": len(wrong), "dominant_ok": dom_ok,
            "level_ok": level_ok, "ch2_silent": ch2_silent,
            "ok": dom_ok and level_ok and ch2_silent}


def analyse_all(args, binary: Path, files: list[Path], tone_dbfs: float, split: bool,
                expected: int) -> dict:
    """Analyses every recording (nproc at a time) and summarises; `expected` recordings that
    do not exist count as 0 %."""
    expect_ms = args.duration * 1000
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        res = list(ex.map(lambda f: analyse_one(binary, f, args.tone, expect_ms, tone_dbfs,
                                                split), files))
    log(f"analysed {len(res)} recordings in {time.monotonic() - t0:.0f} s")
    audio = [r["audio_pct"] for r in res] + [0.0] * max(0, expected - len(res))
    voiced = [r["voiced_pct"] for r in res] + [0.0] * max(0, expected - len(res))
    thr = args.min_audio
    bad = [r for r in res if r["audio_pct"] < thr or not r["ok"]]
    return {"files": len(res), "expected": expected,
            "missing": max(0, expected - len(res)),
            "audio_min": min(audio, default=0.0), "audio_mean": statistics.fmean(audio or [0]),
            "voiced_min": min(voiced, default=0.0),
            "voiced_mean": statistics.fmean(voiced or [0]),
            "below_threshold": len(bad) + max(0, expected - len(res)),
            "wrong_tone": sum(1 for r in res if not r["dominant_ok"]),
            "wrong_level": sum(1 for r in res if not r["level_ok"]),
            "ch2_not_silent": sum(1 for r in res if not r["ch2_silent"]),
            "recorded_s": sum(r["duration_ms"] for r in res) / 1000,
            "format": (f"{res[0].get('channels')} ch {res[0].get('sample_rate', 0) / 1000:g} kHz"
                       if res else "-"),
            "worst": sorted(res, key=lambda r: r["audio_pct"])[:5]}
