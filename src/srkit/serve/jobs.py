"""Who upscales when: a fixed pool of worker threads fed by a bounded FIFO queue (`WorkerPool`), and the
asynchronous jobs built on it (`JobStore`).

* `--workers N` threads upscale at once; they share one `Upscaler` per model (it is thread-safe), so the models
  are held once, in one process.
* At most `queue_size` tasks wait; one more is refused at once (`QueueFull`: the service answers 429 with a
  Retry-After estimated from the recent task times).
* Every task has a deadline. A task still waiting at its deadline is dropped without running; a synchronous
  request whose deadline passes while it waits or runs is answered 503 and its result, if it comes, discarded.
  A task that has started is not interrupted (PyTorch offers no safe way to stop a thread), so it keeps its
  worker until it ends.
* Jobs (`POST /v1/jobs`): a job id (random, 128 bits) for a task; its state and an estimated progress can be
  read while it runs; its result can be downloaded once, then it is gone (410); results not downloaded within
  the TTL are deleted (404 after that).
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srkit.serve.limits import ApiError, DeadlineExpired

__all__ = ["DeadlineExpired", "Job", "JobStore", "QueueFull", "Task", "WorkerPool"]


class QueueFull(Exception):
    """The queue holds `queue_size` waiting tasks already; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"queue full, retry after {retry_after} s")
        self.retry_after = retry_after


def _done(task: Task) -> Any:
    raise RuntimeError("this task has run already")


class Task:
    """One unit of work for the pool: `fn(task)` runs on a worker thread; `future` gets its result."""

    def __init__(self, fn: Callable[[Task], Any], deadline: float, expected_s: float = 1.0):
        self.fn = fn
        self.deadline = deadline
        self.expected_s = max(expected_s, 1e-3)
        self.future: Future = Future()
        self.submitted = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        self.cancelled = False  # the answer is no longer wanted: drop it, or discard the result
        self.reported: float | None = None  # the fraction the upscale itself reported (tiles / strips done)

    def report(self, fraction: float) -> None:
        """Progress callback for the upscale (called on the worker thread)."""
        self.reported = float(fraction)

    def progress(self) -> float:
        """0 while waiting, 1 when finished; in between, the fraction the upscale reported, or else the elapsed /
        expected time; held below 0.99 until the result is written."""
        if self.finished is not None:
            return 1.0
        if self.started is None:
            return 0.0
        if self.reported is not None:
            return min(0.99, self.reported)
        return min(0.99, (time.monotonic() - self.started) / self.expected_s)


class WorkerPool:
    """`workers` threads taking tasks from a FIFO of at most `queue_size` waiting tasks."""

    def __init__(self, workers: int, queue_size: int, on_expired: Callable[[Task], None] | None = None):
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        self.workers = workers
        self.queue_size = queue_size
        self._cond = threading.Condition()
        self._waiting: deque[Task] = deque()
        self._running = 0
        self._closed = False
        self._durations: deque[float] = deque(maxlen=32)
        self._on_expired = on_expired
        self._threads = [threading.Thread(target=self._loop, name=f"srkit-worker-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[Task], Any], *, deadline: float, expected_s: float = 1.0) -> Task:
        """Queue `fn`; raises `QueueFull` when `queue_size` tasks are waiting already."""
        task = Task(fn, deadline, expected_s)
        with self._cond:
            if self._closed:
                raise ApiError(503, "server is shutting down")
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(self._retry_after())
            self._waiting.append(task)
            self._cond.notify()
        return task

    def _retry_after(self) -> int:
        avg = sum(self._durations) / len(self._durations) if self._durations else 1.0
        ahead = len(self._waiting) + self._running
        return int(min(600, max(1, math.ceil(avg * ahead / self.workers))))

    def retry_after(self) -> int:
        with self._cond:
            return self._retry_after()

    def cancel(self, task: Task) -> None:
        """The answer is no longer wanted: a waiting task leaves the queue; a running one has its result discarded."""
        with self._cond:
            task.cancelled = True
            try:
                self._waiting.remove(task)
            except ValueError:
                return
        if not task.future.done():
            task.future.set_exception(DeadlineExpired("cancelled"))

    def position(self, task: Task) -> int | None:
        """Tasks ahead of `task` in the queue (0: next), None when it is not waiting."""
        with self._cond:
            for i, t in enumerate(self._waiting):
                if t is task:
                    return i
        return None

    def stats(self) -> dict[str, float]:
        with self._cond:
            return {"queue_depth": len(self._waiting), "workers_busy": self._running, "workers": self.workers}

    def _next(self) -> Task | None:
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if not self._waiting:
                return None
            task = self._waiting.popleft()
            if time.monotonic() > task.deadline:
                expired = True
            else:
                expired = False
                self._running += 1
                task.started = time.monotonic()
        if expired:
            task.fn = _done
            task.finished = time.monotonic()
            if self._on_expired is not None:
                self._on_expired(task)
            task.future.set_exception(DeadlineExpired("deadline passed while waiting in the queue"))
            return self._next()
        return task

    def _loop(self) -> None:
        while True:
            task = self._next()
            if task is None:
                return
            try:
                result = task.fn(task)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                task.finished = time.monotonic()
                task.future.set_exception(exc)
            else:
                task.finished = time.monotonic()
                task.future.set_result(result)
            finally:
                task.fn = _done  # let go of the upload the closure holds (a finished job may be kept a while)
                with self._cond:
                    self._running -= 1
                    if task.started is not None:
                        self._durations.append(time.monotonic() - task.started)

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new tasks, fail the waiting ones, and wait up to `timeout` s for running ones."""
        with self._cond:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
        for task in waiting:
            task.future.set_exception(ApiError(503, "server is shutting down"))
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))


@dataclass
class Job:
    """An asynchronous upscale: its task, what it was asked, and where its result is."""

    id: str
    task: Task
    info: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued, running, done, failed
    error: ApiError | None = None
    result: Any = None  # the work function's result (has .path) once done
    ended: float | None = None


class JobStore:
    """Jobs by id: at most `max_jobs` held (queued, running, or done and not yet downloaded); finished jobs are
    kept `ttl` seconds, then deleted with their result file."""

    def __init__(self, pool: WorkerPool, *, ttl: float, max_jobs: int):
        self.pool = pool
        self.ttl = ttl
        self.max_jobs = max_jobs
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()  # id -> why it is gone (downloaded, expired)
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="srkit-jobs-sweeper", daemon=True)
        self._sweeper.start()

    def submit(self, fn: Callable[[Task], Any], *, deadline: float, expected_s: float, info: dict) -> Job:
        self.sweep()
        with self._lock:
            if len(self._jobs) >= self.max_jobs:
                raise ApiError(429, f"{self.max_jobs} jobs are held already; download or wait for results first",
                               {"Retry-After": str(self.pool.retry_after())})
            task = self.pool.submit(fn, deadline=deadline, expected_s=expected_s)
            job = Job(secrets.token_urlsafe(16), task, info)
            self._jobs[job.id] = job

        def finished(fut: Future) -> None:
            self._finished(job, fut)

        task.future.add_done_callback(finished)
        return job

    def _finished(self, job: Job, fut: Future) -> None:
        from srkit.serve.work import error_of

        with self._lock:
            job.ended = time.monotonic()
            exc = fut.exception()
            if exc is None:
                job.state, job.result = "done", fut.result()
            else:
                job.state, job.error = "failed", error_of(exc)

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                if job.state == "queued" and job.task.started is not None:
                    job.state = "running"
                return job
            why = self._gone.get(job_id)
        if why is not None:
            raise ApiError(410, f"job {job_id} is gone: {why}")
        raise ApiError(404, f"no job {job_id} (unknown, or expired and forgotten)")

    def status(self, job: Job) -> dict[str, Any]:
        task = job.task
        with self._lock:
            if job.state == "queued" and task.started is not None:
                job.state = "running"
        out: dict[str, Any] = {"id": job.id, "state": job.state, "progress": round(task.progress(), 3),
                               **job.info}
        if job.state == "queued":
            out["queue_position"] = self.pool.position(task)
        if job.state in ("queued", "running"):
            left = task.expected_s - ((time.monotonic() - task.started) if task.started else 0.0)
            out["eta_s"] = round(max(0.0, left), 1)
        if job.state == "done":
            out["result"] = f"/v1/jobs/{job.id}/result"
            out.update(job.result.describe())
        if job.error is not None:
            out["error"], out["error_status"] = job.error.message, job.error.status
        if job.ended is not None:
            out["expires_in_s"] = round(max(0.0, job.ended + self.ttl - time.monotonic()), 1)
        return out

    def take(self, job_id: str) -> Any:
        """The result of a done job, once: the job is forgotten (410 afterwards); 409 while it is not done."""
        job = self.get(job_id)
        with self._lock:
            if job.state == "failed":
                assert job.error is not None
                raise ApiError(409, f"job {job_id} failed: {job.error.message}")
            if job.state != "done":
                raise ApiError(409, f"job {job_id} is {job.state}; poll GET /v1/jobs/{job_id} until it is done")
            del self._jobs[job_id]
            self._forget(job_id, "its result was downloaded already (results are downloadable once)")
        return job.result

    def drop(self, job_id: str) -> None:
        """Forget a job at the client's request: a waiting one leaves the queue, a result is deleted."""
        job = self.get(job_id)
        with self._lock:
            self._jobs.pop(job_id, None)
            self._forget(job_id, "it was deleted")
        self.pool.cancel(job.task)

        def discard(fut: Future) -> None:
            if not fut.cancelled() and fut.exception() is None:
                Path(fut.result().path).unlink(missing_ok=True)

        job.task.future.add_done_callback(discard)

    def _forget(self, job_id: str, why: str) -> None:
        self._gone[job_id] = why
        while len(self._gone) > 4096:
            self._gone.popitem(last=False)

    def sweep(self) -> None:
        """Delete finished jobs older than the TTL, with their result files."""
        now = time.monotonic()
        dead: list[Job] = []
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.ended is not None and now - job.ended > self.ttl:
                    dead.append(self._jobs.pop(job_id))
                    self._forget(job_id, f"it expired ({self.ttl:g} s after it ended)")
        for job in dead:
            path = getattr(job.result, "path", None)
            if path is not None:
                Path(path).unlink(missing_ok=True)

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for job in self._jobs.values():
                state = "running" if job.state == "queued" and job.task.started is not None else job.state
                out[state] = out.get(state, 0) + 1
            return out

    def _sweep_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.sweep()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            path = getattr(job.result, "path", None)
            if path is not None:
                try:
                    os.unlink(path)
                except OSError:
                    pass
