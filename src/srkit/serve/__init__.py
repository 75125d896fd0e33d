"""`srkit serve`: an upscaling service (FastAPI + uvicorn, extra ``srkit[serve]``) and its web page.

One process holds the models; `--workers N` threads upscale at once, sharing one `Upscaler` per model, through the
one inference path (`srkit.infer.files.upscale_file`). Modules: :mod:`~srkit.serve.app` (routes, auth, errors),
:mod:`~srkit.serve.limits` (upload size, sniffing, header pixel cap), :mod:`~srkit.serve.jobs` (worker pool,
bounded queue, deadlines, asynchronous jobs), :mod:`~srkit.serve.work` (parameters, one upscale),
:mod:`~srkit.serve.registry` (served models), :mod:`~srkit.serve.metrics` (Prometheus text) and ``page.html``.
"""

from __future__ import annotations

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    if name in __all__:
        from srkit.serve import app

        return getattr(app, name)
    raise AttributeError(name)
