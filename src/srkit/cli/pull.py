"""`srkit pull`: download a catalogue model into the cache."""

from __future__ import annotations

import typer

HELP = """Download a model of the catalogue (srkit models --catalog) into the cache: <cache>/models/NAME.<suffix>,
where <cache> is $SRKIT_CACHE, else ~/.cache/srkit (the platform's cache folder). Then `srkit upscale --model NAME`
and load_model("NAME") use it, offline.

Only direct HTTP(S) files with a published SHA-256 are pulled. The download resumes after a dropped connection or an
interrupted run (NAME.part), is checked against its SHA-256 (a mismatch deletes it) and is renamed into place only
then. The model's licence is printed: it applies to what you do with the model."""


def pull_command(
    name: str = typer.Argument(..., help="Catalogue model id (srkit models --catalog).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Download again even if the model is in the cache."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds to wait for the server or next bytes."),
    retries: int = typer.Option(3, "--retries", min=0, help="Tries after a dropped connection or timeout (resumed)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from srkit.catalog import (
        closest_names,
        find_pulled,
        is_direct_url,
        load_catalogue,
        models_dir,
        runner,
        spandrel_installed,
    )
    from srkit.catalog.download import download
    from srkit.errors import ConfigError

    cat = load_catalogue(on_ignored=lambda msg: print(f"srkit: warning: {msg}", file=sys.stderr))
    entry = cat.get(name)
    if entry is None:
        close = closest_names(name, cat.ids)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ConfigError(f"{name!r} is not in the model catalogue{hint} (srkit models --catalog lists it; shipped "
                          "and classical models need no pull)")
    licence = entry.license or "unknown (ask the author before using it)"
    typer.echo(f"{entry.id}: {entry.name} by {entry.author or 'unknown'}, x{entry.scale} {entry.architecture}; "
               f"licence: {licence} ({entry.page})")
    runs = runner(entry)
    if runs is None:
        typer.echo(f"note: neither srkit nor spandrel runs {entry.architecture} models", err=True)
    elif runs == "spandrel" and not spandrel_installed():
        typer.echo(f"note: {entry.architecture} models run through spandrel: pip install 'srkit[models]'", err=True)
    have = find_pulled(entry.id)
    if have is not None and not force:
        typer.echo(f"already pulled: {have}")
        return
    res = entry.resource
    if res is None:
        raise ConfigError(f"{entry.id} cannot be pulled ({entry.pull_problem}): download it from {entry.where} and "
                          f"put it at {models_dir() / entry.filename}")
    dest = models_dir() / entry.filename
    urls = [u for u in res.urls if is_direct_url(u)]  # the first, then its mirrors
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=no_progress, transient=False) as bar:
        task = bar.add_task(entry.id, total=res.size)

        def show(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        path = download(urls, dest, sha256=res.sha256, size=res.size, timeout=timeout, retries=retries,
                        progress=show)
    typer.echo(f"pulled {entry.id} ({path.stat().st_size / 1e6:,.1f} MB, SHA-256 verified) -> {path}")
