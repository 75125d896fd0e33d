"""Load test of `srkit serve` on the loopback: N concurrent requests of mixed sizes against `--workers 2`.

Starts the server as a child process (127.0.0.1, a free port), sends `--requests` uploads at once (each in its own
thread), plus two attacks among them: a real decompression bomb (a PNG of zeros whose header says 6000 x 6000) and
a header claiming 50000 x 50000 pixels. Both must be answered 413 without decoding: they are counted apart, with
their answer times. Then it prints the count of each status for the good requests (only 200, 429 and 503 are
allowed), their p50 / p99 latency, and the server's peak RSS (VmHWM). `--rounds 2` repeats the same load on the
same server: the peak after round 2 must stay within 10 % of round 1's (no growth). Bounded: every request has a
timeout, every round a deadline; the server is stopped at the end, whatever happens.

    python benchmarks/serve_load.py                      # 200 requests, 2 rounds, balanced-x4
    python benchmarks/serve_load.py --requests 60 --rounds 2 --model tiny-x4
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(h: int, w: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = (rng.random((max(2, h // 8), max(2, w // 8), 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((w, h), Image.BICUBIC).save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_header(w: int, h: int, idat: bytes) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def bomb(side: int) -> bytes:
    """A real bomb: side x side 8-bit gray zeros, deflated (side^2 bytes decoded from a few KB)."""
    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    parts = [comp.compress(row * 250) for _ in range(side // 250)] + [comp.compress(row * (side % 250)),
                                                                     comp.flush()]
    return png_with_header(side, side, b"".join(parts))


def post(url: str, data: bytes, timeout: float) -> tuple[int, float]:
    t0 = time.perf_counter()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    except (urllib.error.URLError, OSError):
        status = -1  # connection refused / reset / client timeout
    return status, time.perf_counter() - t0


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of a process in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmHWM", 0.0), fields.get("VmRSS", 0.0)


def one_round(base: str, model: str, n: int, sizes: list[int], timeout: float, deadline: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    bodies = [png(int(rng.choice(sizes)), int(rng.choice(sizes)), seed * 1000 + i) for i in range(n)]
    attacks = {"bomb 6000x6000 (zeros)": bomb(6000), "header 50000x50000": png_with_header(50000, 50000, b"\0")}
    url = f"{base}/v1/upscale?model={model}"
    results: list[tuple[int, float]] = [(0, 0.0)] * n
    attack_results: dict[str, tuple[int, float]] = {}
    start = threading.Barrier(n + len(attacks))
    t0 = time.perf_counter()

    def good(i: int) -> None:
        start.wait()
        results[i] = post(url, bodies[i], timeout)

    def attack(name: str) -> None:
        start.wait()
        time.sleep(0.05)  # lands among the good requests
        attack_results[name] = post(url, attacks[name], timeout)

    with ThreadPoolExecutor(max_workers=n + len(attacks)) as ex:
        futures = [ex.submit(good, i) for i in range(n)] + [ex.submit(attack, k) for k in attacks]
        for f in futures:
            f.result(timeout=max(1.0, deadline - time.monotonic()))
    wall = time.perf_counter() - t0
    statuses = Counter(s for s, _ in results)
    ok = sorted(t for s, t in results if s == 200)
    every = sorted(t for _, t in results)

    def pct(xs: list[float], q: float) -> float | None:
        return None if not xs else round(float(np.percentile(xs, q)), 3)

    return {"requests": n, "wall_s": round(wall, 1), "status_counts": dict(sorted(statuses.items())),
            "bad_statuses": sum(v for k, v in statuses.items() if k not in (200, 429, 503)),
            "p50_ok_s": pct(ok, 50), "p99_ok_s": pct(ok, 99), "p50_all_s": pct(every, 50), "p99_all_s": pct(every, 99),
            "attacks": {k: {"status": s, "seconds": round(t, 3)} for k, (s, t) in attack_results.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=30.0, help="the server's per-request limit (503 after)")
    ap.add_argument("--model", default="balanced-x4")
    ap.add_argument("--sizes", default="32,64,96,128,192,256", help="image sides to mix (px)")
    ap.add_argument("--round-deadline", type=float, default=300.0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                                      os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "srkit", "serve", "--port", str(port), "--workers", str(args.workers),
           "--queue", str(args.queue), "--timeout", str(args.timeout), "--models", args.model,
           "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out: dict = {"command": " ".join(cmd[1:]), "rounds": []}
    try:
        end = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited: {server.stderr.read() if server.stderr else ''}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > end:
                    raise SystemExit("server did not start within 120 s") from None
                time.sleep(0.25)
        out["rss_idle_mb"] = round(peak_rss_mb(server.pid)[1], 1)
        sizes = [int(s) for s in args.sizes.split(",")]
        for r in range(args.rounds):
            res = one_round(base, args.model, args.requests, sizes, args.timeout + 60,
                            time.monotonic() + args.round_deadline, seed=1)  # the same load every round
            res["peak_rss_mb"], res["rss_mb"] = (round(v, 1) for v in peak_rss_mb(server.pid))
            out["rounds"].append(res)
            print(json.dumps(res), flush=True)
        with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        out["metrics_413"] = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                                 if line.startswith("srkit_requests_total") and 'status="413"' in line)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    rounds = out["rounds"]
    peaks = [r["peak_rss_mb"] for r in rounds]
    out["peak_growth_pct"] = round(100 * (peaks[-1] - peaks[0]) / peaks[0], 2) if len(peaks) > 1 else None
    ok = (all(r["bad_statuses"] == 0 for r in rounds) and max(peaks) < 3072
          and all(a["status"] == 413 for r in rounds for a in r["attacks"].values())
          and (out["peak_growth_pct"] is None or out["peak_growth_pct"] < 10))
    out["targets_met"] = ok
    print(f"summary: {len(rounds)} rounds of {args.requests} requests (+2 attacks) against --workers {args.workers}; "
          f"statuses {[r['status_counts'] for r in rounds]}; p50/p99 of 200s "
          f"{[(r['p50_ok_s'], r['p99_ok_s']) for r in rounds]} s; attacks "
          f"{[{k: v['status'] for k, v in r['attacks'].items()} for r in rounds]}; server peak RSS {peaks} MB "
          f"(growth {out['peak_growth_pct']} %); targets met: {ok}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
