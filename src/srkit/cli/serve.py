"""`srkit serve`: the upscaling service and its web page (`srkit.serve`; extra `srkit[serve]`)."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

HELP = """Serve upscaling over HTTP: POST /v1/upscale, asynchronous /v1/jobs, /v1/models, /healthz, /metrics, and a
web page at / (drop an image, compare before and after, download).

One process holds the models; --workers N requests are upscaled at once by threads sharing one model each. More
waiting than --queue are answered 429 (Retry-After); a request not done in --timeout seconds 503. Uploads over
--max-upload-mb are 413, as are images whose header claims more than --max-pixels pixels (checked before
decoding); non-images are 415 (content sniffed, never the name).

Binds 127.0.0.1 unless --host says otherwise. --token (or $SRKIT_TOKEN) requires 'Authorization: Bearer TOKEN' on
every route but /healthz and the page itself (open it as http://HOST:PORT/#token=TOKEN, or type the token in it).
CORS is off unless --cors-origin is given. Needs `pip install 'srkit[serve]'`."""


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="Port."),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Requests upscaled at once (threads)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="SRKIT_TOKEN", show_envvar=True,
                                        help="Require 'Authorization: Bearer TOKEN'."),
    models: Optional[list[str]] = typer.Option(
        None, "--models", "-m", help="Models to serve: names or weights files (default: every shipped model and "
                                     "bicubic). Several after one flag: --models balanced-x4 tiny-x4."),
    queue: int = typer.Option(16, "--queue", min=0, help="Requests that may wait for a worker (more: 429)."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds a request may take (then 503)."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", min=0.001, help="Upload size limit (413)."),
    max_pixels: int = typer.Option(16_000_000, "--max-pixels", min=1,
                                   help="Input pixel cap, from the header before decoding (413)."),
    job_ttl: float = typer.Option(600.0, "--job-ttl", min=1.0, help="Seconds a job's result is kept."),
    job_timeout: float = typer.Option(600.0, "--job-timeout", min=1.0,
                                      help="Seconds a job may wait before it starts."),
    tile: str = typer.Option("auto", "--tile", help="Default LR tile side, 'auto' or 'none'."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="Torch threads per worker (default: cores / workers)."),
    cors_origin: Optional[list[str]] = typer.Option(None, "--cors-origin",
                                                    help="Allow browser calls from this origin (repeatable)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    try:
        import uvicorn

        from srkit.serve.app import ServeConfig, create_app
    except ImportError as exc:
        typer.echo(f"srkit: error: srkit serve needs the serve extra ({exc.name} is missing): "
                   "pip install 'srkit[serve]'", err=True)
        raise typer.Exit(1) from None
    import torch

    from srkit.cli.upscale import parse_tile

    tile_v = parse_tile(tile)
    cores = os.cpu_count() or 1
    torch.set_num_threads(threads or max(1, cores // workers))
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(f"srkit serve: warning: listening on {host} without --token: anyone who can reach it may use it",
              file=sys.stderr)
    config = ServeConfig(models=models or None, workers=workers, queue=queue, timeout=timeout,
                         job_timeout=job_timeout, job_ttl=job_ttl, max_upload_bytes=int(max_upload_mb * 2**20),
                         max_pixels=max_pixels, token=token or None, cors_origins=tuple(cors_origin or ()),
                         tile=tile_v, device=device)
    app = create_app(config)
    served = ", ".join(app.state.registry.names())
    print(f"srkit serve: http://{host}:{port}/ ({served}; {workers} workers, queue {queue})", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
