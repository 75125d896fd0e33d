"""The FastAPI app of `srkit serve`: routes, authentication, error answers and the web page.

Routes (every answer that is not an image is JSON; every error is ``{"error": "<one line>", "status": N}``):

* ``POST /v1/upscale``: an image as the raw body or as the multipart field ``file``; parameters in the query
  string or as multipart fields: ``model``, ``scale``, ``format`` (png, jpg, webp, tif, bmp, heic, avif, jp2;
  default: the input's), ``tile`` (auto, none or a side), ``quality``, ``alpha``, ``tta``, ``seed``, ``inputs``
  (a JSON object of the model's declared inputs: ``{"noise": 10, "jpeg": 60}`` for a conditioned model) and
  ``strength`` (0..1, a conditioned model's cleaning strength; with neither, its levels are estimated from the
  image). Answers the image, streamed from disk.
* ``POST /v1/jobs`` (same body and parameters): 202 and a job id; ``GET /v1/jobs/{id}``: state, estimated
  progress, queue position; ``GET /v1/jobs/{id}/result``: the image, once; ``DELETE /v1/jobs/{id}``: drop it.
* ``GET /v1/models``, ``GET /healthz``, ``GET /metrics`` (Prometheus text), ``GET /`` (the web page).

Statuses: 400 no image, 401 missing/wrong token, 404 unknown job, 409 job not done, 410 result gone,
413 upload or pixel cap, 415 not an image, 422 bad parameter or undecodable image, 429 queue full (Retry-After),
503 not done in time (Retry-After).

Security: `--token` makes every route but ``/healthz`` and the page ``/`` (static, no data; it sends the token the
user gives it) require ``Authorization: Bearer <token>``; CORS is off unless origins are given.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import shutil
import tempfile
import time
from collections.abc import MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from srkit.serve.jobs import JobStore, QueueFull, Task, WorkerPool
from srkit.serve.limits import ApiError, check_pixels, image_header, pixel_cap, read_body
from srkit.serve.metrics import Metrics, route_label
from srkit.serve.registry import Registry, default_models
from srkit.serve.work import Params, Result, error_of, estimate_seconds, parse_params, run_upscale

__all__ = ["ServeConfig", "Service", "create_app"]

_PUBLIC = {"/healthz", "/"}
_MULTIPART_SLACK = 64 * 1024  # multipart framing and fields around the file


@dataclass
class ServeConfig:
    """Settings of a service (the options of `srkit serve`)."""

    models: Any = None  # names / paths, or a mapping of served name -> name, path or SRModel; None: default_models()
    workers: int = 2
    queue: int = 16
    timeout: float = 60.0
    job_timeout: float = 600.0
    job_ttl: float = 600.0
    max_jobs: int = 64
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int | None = 16_000_000
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    tile: Any = "auto"
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "cpu"
    workdir: str | None = None


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse({"error": err.message, "status": err.status}, status_code=err.status, headers=err.headers)


class _Guard:
    """Pure ASGI middleware: bearer-token check (401) and per-request metrics (route, status, latency)."""

    def __init__(self, app: Any, token: str | None, metrics: Metrics, cors: bool):
        self.app, self.token, self.metrics, self.cors = app, token, metrics, cors

    def _authorised(self, scope: dict) -> bool:
        if self.token is None or scope["path"] in _PUBLIC:
            return True
        if self.cors and scope.get("method") == "OPTIONS":
            return True  # CORS preflight carries no credentials
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                got = value.decode("latin-1")
                scheme, _, cred = got.partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(cred.strip().encode(), self.token.encode())
        return False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        route = route_label(scope["path"])
        status = {"code": 500}

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                self.metrics.request(route, message["status"], time.perf_counter() - t0)
            await send(message)

        if not self._authorised(scope):
            resp = _error(ApiError(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                                   {"WWW-Authenticate": 'Bearer realm="srkit"'}))
            await resp(scope, receive, send_wrapper)
            return
        await self.app(scope, receive, send_wrapper)


async def _upload(request: Request, limit: int) -> tuple[bytes, dict[str, str], str | None]:
    """(image bytes, parameters, client file name) from a raw or multipart body, at most `limit` bytes of image."""
    ctype = request.headers.get("content-type", "")
    multipart = ctype.lower().startswith("multipart/form-data")
    body = await read_body(request.stream(), limit + (_MULTIPART_SLACK if multipart else 0),
                           request.headers.get("content-length"))
    fields = dict(request.query_params)
    if not multipart:
        return body, fields, None
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def replay():
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=1, max_fields=32).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"bad multipart body: {exc.message}") from None
    data, filename = b"", None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data, filename = await value.read(), value.filename
            await value.close()
        else:
            fields[key] = str(value)
    if len(data) > limit:
        raise ApiError(413, f"upload is {len(data):,} bytes, over this server's limit of {limit:,} bytes")
    return data, fields, filename


def _stream(result: Result) -> StreamingResponse:
    """The result file as a streamed answer; the file is unlinked first, so nothing is left if the client goes."""
    fh = open(result.path, "rb")
    os.unlink(result.path)
    size = os.fstat(fh.fileno()).st_size

    def chunks():
        try:
            while chunk := fh.read(1 << 20):
                yield chunk
        finally:
            fh.close()

    headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{result.filename}"',
               "X-Srkit-Width": str(result.out_width), "X-Srkit-Height": str(result.out_height),
               "X-Srkit-Seconds": f"{result.seconds:.3f}"}
    return StreamingResponse(chunks(), media_type=result.media_type, headers=headers)


def _discard(fut: Any) -> None:
    """Done callback of a task whose client has gone: remove its result file."""
    if not fut.cancelled() and fut.exception() is None:
        Path(fut.result().path).unlink(missing_ok=True)


def _page() -> str:
    return resources.files("srkit.serve").joinpath("page.html").read_text(encoding="utf-8")


class Service:
    """What the routes share: models, worker pool, jobs, metrics, the private work folder and the limits."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.registry = Registry(cfg.models if cfg.models is not None else default_models(), tile=cfg.tile,
                                 dtype=cfg.dtype, device=cfg.device)
        self.metrics = Metrics()
        self.cap = pixel_cap(cfg.max_pixels)
        self.workdir = Path(cfg.workdir) if cfg.workdir else Path(tempfile.mkdtemp(prefix="srkit-serve-"))
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pool = WorkerPool(cfg.workers, cfg.queue, on_expired=lambda task: self.metrics.image("expired"))
        self.jobs = JobStore(self.pool, ttl=cfg.job_ttl, max_jobs=cfg.max_jobs)
        self.metrics.gauges = self.pool.stats
        self.metrics.jobs = self.jobs.counts

    def close(self) -> None:
        self.jobs.close()
        self.pool.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def work(self, params: Params, header: Any, data: bytes):
        """The task function of one upscale (runs on a worker thread)."""

        def fn(task: Task) -> Result:
            try:
                result = run_upscale(self.registry, params, header, data, self.workdir, progress=task.report)
            except BaseException:
                self.metrics.image("failed")
                raise
            self.metrics.image("ok", result.width * result.height, result.out_width * result.out_height)
            return result

        return fn

    async def checked(self, request: Request) -> tuple[Params, Any, bytes]:
        """The request's upload and parameters, checked (400/413/415/422) before anything is queued."""
        data, fields, filename = await _upload(request, self.cfg.max_upload_bytes)
        fields.pop("token", None)
        params = parse_params(fields, self.registry, self.cfg.tile, filename)
        header = image_header(data)
        check_pixels(header, self.cap)
        return params, header, data

    def submit(self, params: Params, header: Any, data: bytes) -> Task:
        try:
            return self.pool.submit(self.work(params, header, data), deadline=time.monotonic() + self.cfg.timeout,
                                    expected_s=estimate_seconds(self.registry, params, header))
        except QueueFull as exc:
            raise ApiError(429, f"all {self.pool.workers} workers are busy and {self.pool.queue_size} requests wait "
                                f"already; retry after {exc.retry_after} s",
                           {"Retry-After": str(exc.retry_after)}) from None

    async def upscale(self, request: Request) -> Response:
        params, header, data = await self.checked(request)
        task = self.submit(params, header, data)
        fut = asyncio.wrap_future(task.future)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no "never retrieved" noise
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), timeout=max(0.0, task.deadline - time.monotonic()))
        except asyncio.TimeoutError:
            self.pool.cancel(task)
            task.future.add_done_callback(_discard)
            raise ApiError(503, f"not done within this server's {self.cfg.timeout:g} s limit; retry later, send a "
                                "smaller image, or use POST /v1/jobs",
                           {"Retry-After": str(self.pool.retry_after())}) from None
        except Exception as exc:  # noqa: BLE001 - the task's error, answered by kind
            err = error_of(exc)
            if err.status == 503:
                err.headers.setdefault("Retry-After", str(self.pool.retry_after()))
            raise err from None
        return _stream(result)

    async def submit_job(self, request: Request) -> JSONResponse:
        params, header, data = await self.checked(request)
        info = {"model": params.model, "width": header.width, "height": header.height}
        try:
            job = self.jobs.submit(self.work(params, header, data), deadline=time.monotonic() + self.cfg.job_timeout,
                                   expected_s=estimate_seconds(self.registry, params, header), info=info)
        except QueueFull as exc:
            raise ApiError(429, f"the queue is full; retry after {exc.retry_after} s",
                           {"Retry-After": str(exc.retry_after)}) from None
        return JSONResponse(self.jobs.status(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    def models(self) -> dict:
        cfg = self.cfg
        return {"models": self.registry.describe(), "default": self.registry.default,
                "limits": {"max_upload_bytes": cfg.max_upload_bytes, "max_pixels": self.cap, "timeout_s": cfg.timeout,
                           "workers": cfg.workers, "queue": cfg.queue}}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return _error(ApiError(exc.status_code, msg, dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return _error(ApiError(422, f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg', 'invalid')}"))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        return _error(error_of(exc))


def _add_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_page(), headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(svc.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict:
        return svc.models()

    @app.post("/v1/upscale")
    async def upscale(request: Request) -> Response:
        return await svc.upscale(request)

    @app.post("/v1/jobs", status_code=202)
    async def submit_job(request: Request) -> JSONResponse:
        return await svc.submit_job(request)

    @app.get("/v1/jobs/{job_id}")
    async def job_status(job_id: str) -> dict:
        return svc.jobs.status(svc.jobs.get(job_id))

    @app.get("/v1/jobs/{job_id}/result")
    async def job_result(job_id: str) -> Response:
        return _stream(svc.jobs.take(job_id))

    @app.delete("/v1/jobs/{job_id}")
    async def job_delete(job_id: str) -> dict:
        svc.jobs.drop(job_id)
        return {"id": job_id, "deleted": True}


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The service's app: loads the models now (errors surface at start) and starts the worker threads; they stop,
    and the private work folder is removed, when the app shuts down."""
    svc = Service(config or ServeConfig())

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await asyncio.to_thread(svc.close)

    app = FastAPI(title="srkit", version="1", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = svc
    app.state.registry = svc.registry
    _add_error_handlers(app)
    _add_routes(app, svc)
    app.add_middleware(_Guard, token=svc.cfg.token, metrics=svc.metrics, cors=bool(svc.cfg.cors_origins))
    if svc.cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(svc.cfg.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Content-Disposition", "X-Srkit-Width", "X-Srkit-Height", "Retry-After"])
    return app
