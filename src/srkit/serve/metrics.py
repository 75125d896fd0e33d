"""The service's Prometheus metrics, kept in process and written in the text exposition format (no client library).

* ``srkit_requests_total{route, status}``: every answered request, by route template and status code.
* ``srkit_request_duration_seconds{route}``: histogram of the upscale routes' latency (receipt to answer headers).
* ``srkit_queue_depth`` / ``srkit_workers_busy`` / ``srkit_workers``: the worker pool now.
* ``srkit_pixels_processed_total{side}``: input (``side="input"``) and output (``side="output"``) pixels of the
  images upscaled.
* ``srkit_images_total{outcome}``: images upscaled (``ok``), failed, or dropped at their deadline.
* ``srkit_jobs{state}``: asynchronous jobs held now, by state.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable

__all__ = ["BUCKETS", "Metrics", "route_label"]

#: Latency histogram bucket bounds in seconds.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

_ROUTES = [
    (re.compile(r"^/v1/jobs/[^/]+/result$"), "/v1/jobs/{id}/result"),
    (re.compile(r"^/v1/jobs/[^/]+$"), "/v1/jobs/{id}"),
]
_FIXED = {"/", "/healthz", "/metrics", "/v1/models", "/v1/upscale", "/v1/jobs"}


def route_label(path: str) -> str:
    """The route template of a request path (bounded label values: job ids are not labels)."""
    if path in _FIXED:
        return path
    for pattern, label in _ROUTES:
        if pattern.match(path):
            return label
    return "other"


class Metrics:
    """Thread-safe counters and a histogram; `render()` gives the exposition text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._hist_sum: dict[str, float] = defaultdict(float)
        self._hist_count: dict[str, int] = defaultdict(int)
        self._pixels = {"input": 0, "output": 0}
        self._images: dict[str, int] = defaultdict(int)
        self.gauges: Callable[[], dict[str, float]] = dict
        self.jobs: Callable[[], dict[str, int]] = dict

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, status)] += 1
            if route in ("/v1/upscale", "/v1/jobs"):
                counts = self._hist.setdefault(route, [0] * len(BUCKETS))
                for i, bound in enumerate(BUCKETS):
                    if seconds <= bound:
                        counts[i] += 1
                self._hist_sum[route] += seconds
                self._hist_count[route] += 1

    def image(self, outcome: str, in_pixels: int = 0, out_pixels: int = 0) -> None:
        with self._lock:
            self._images[outcome] += 1
            self._pixels["input"] += in_pixels
            self._pixels["output"] += out_pixels

    def count(self, route: str, status: int) -> int:
        with self._lock:
            return self._requests.get((route, status), 0)

    def render(self) -> str:
        with self._lock:
            requests = dict(self._requests)
            hist = {k: list(v) for k, v in self._hist.items()}
            hsum, hcount = dict(self._hist_sum), dict(self._hist_count)
            pixels, images = dict(self._pixels), dict(self._images)
        gauges, jobs = self.gauges(), self.jobs()
        out = ["# HELP srkit_requests_total Requests answered, by route and status code.",
               "# TYPE srkit_requests_total counter"]
        for (route, status), n in sorted(requests.items()):
            out.append(f'srkit_requests_total{{route="{route}",status="{status}"}} {n}')
        out += ["# HELP srkit_request_duration_seconds Latency of the upscale routes, receipt to answer.",
                "# TYPE srkit_request_duration_seconds histogram"]
        for route, counts in sorted(hist.items()):
            for bound, n in zip(BUCKETS, counts):
                out.append(f'srkit_request_duration_seconds_bucket{{route="{route}",le="{bound:g}"}} {n}')
            out.append(f'srkit_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {hcount[route]}')
            out.append(f'srkit_request_duration_seconds_sum{{route="{route}"}} {hsum[route]:.6f}')
            out.append(f'srkit_request_duration_seconds_count{{route="{route}"}} {hcount[route]}')
        for name, help_text in (("queue_depth", "Upscales waiting for a worker."),
                                ("workers_busy", "Workers upscaling now."), ("workers", "Worker threads.")):
            out += [f"# HELP srkit_{name} {help_text}", f"# TYPE srkit_{name} gauge",
                    f"srkit_{name} {gauges.get(name, 0):g}"]
        out += ["# HELP srkit_pixels_processed_total Pixels of the images upscaled (input and output side).",
                "# TYPE srkit_pixels_processed_total counter"]
        for side in ("input", "output"):
            out.append(f'srkit_pixels_processed_total{{side="{side}"}} {pixels[side]}')
        out += ["# HELP srkit_images_total Images by outcome (ok, failed, expired at their deadline).",
                "# TYPE srkit_images_total counter"]
        for outcome in ("ok", "failed", "expired"):
            out.append(f'srkit_images_total{{outcome="{outcome}"}} {images.get(outcome, 0)}')
        out += ["# HELP srkit_jobs Asynchronous jobs held, by state.", "# TYPE srkit_jobs gauge"]
        for state in ("queued", "running", "done", "failed"):
            out.append(f'srkit_jobs{{state="{state}"}} {jobs.get(state, 0)}')
        return "\n".join(out) + "\n"
