"""Planning `srkit upscale` / `srkit batch` runs: which files (folders walked, globs expanded, DICOM series kept
whole), where each output goes, stale temp files of killed runs, and one-line messages on stderr.

Which files a folder or glob gives: image files by suffix (`srkit.io.IMAGE_SUFFIXES`), DICOM (`.dcm`) and NIfTI
(`.nii`, `.nii.gz`) by name, and, with ``domains=True`` (`srkit upscale`, `srkit batch`), every other file srkit
routes by content (`srkit.domains.route`: videos, DICOM files without a suffix, NIfTI pairs' `.hdr`, GeoTIFFs):
the same files a single-file input would be upscaled as. Anything else (text, JSON, a NIfTI pair's `.img`, a
`DICOMDIR` index) is skipped without a message, as are hidden files and folders."""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from srkit.io import IMAGE_SUFFIXES  # suffixes walked in folders: the formats srkit.io reads

__all__ = ["Job", "find_images", "plan_jobs", "reason", "remove_stale_temps", "stderr_lines"]


@dataclass
class Job:
    """One file to upscale: `src` -> `dst`."""

    src: Path
    dst: Path


def _has_magic(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob that hold no wildcard (`a/b/**/*.png` -> `a/b`)."""
    parts = Path(pattern).parts
    fixed = []
    for p in parts[:-1]:
        if _has_magic(p):
            break
        fixed.append(p)
    return Path(*fixed) if fixed else Path(".")


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_images(root: Path, exclude: str | None, domains: bool = False) -> list[Path]:
    """Image files under `root` (and, with `domains`, every file srkit routes by content), sorted, skipping hidden
    entries and the folder `exclude` (the output folder, when it lies inside an input folder: a rerun must not take
    its own outputs as inputs)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath != str(root) and _is_series(Path(dirpath), domains):  # a DICOM series folder is one input
            found.append(Path(dirpath))
            dirnames[:] = []
            continue
        dirnames[:] = sorted(
            d for d in dirnames
            if not _is_hidden(d) and (exclude is None or os.path.realpath(os.path.join(dirpath, d)) != exclude)
        )
        for f in sorted(filenames):
            if _wanted(Path(dirpath) / f, domains):
                found.append(Path(dirpath) / f)
    return found


# Domain files found in folders by name (besides the image suffixes): DICOM files and NIfTI volumes.
_DOMAIN_SUFFIXES = (".dcm", ".nii", ".nii.gz")


def _walked_name(name: str) -> bool:
    low = name.lower()
    return Path(low).suffix in IMAGE_SUFFIXES or low.endswith(_DOMAIN_SUFFIXES)


def _routable(path: Path) -> bool:
    """A file srkit upscales as a domain file, recognised by content whatever its name (`srkit.domains.route`):
    a video, DICOM, NIfTI or GeoTIFF. A DICOMDIR (a media index, no image) is not."""
    from srkit.domains import route

    if path.name.upper() == "DICOMDIR":
        return False
    try:
        return path.is_file() and route(path) is not None
    except OSError:
        return False


def _wanted(path: Path, domains: bool) -> bool:
    """Whether a file met in a folder or a glob is an input: an image or domain file by name, else (with
    `domains`) one srkit routes by content; hidden files never."""
    name = path.name
    if _is_hidden(name):
        return False
    return _walked_name(name) or (domains and _routable(path))


def _is_series(folder: Path, domains: bool = False) -> bool:
    """A folder of DICOM files (a series, or several) and no other images (nor, with `domains`, videos or volumes
    recognised by content): one input, written to one folder. A folder that also holds other inputs is walked
    file by file instead."""
    from srkit.domains.sniff import is_dicom

    if not is_dicom(folder):
        return False
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and not _is_hidden(e.name)]
    except OSError:
        return False
    for n in names:
        if n.lower().endswith(".dcm"):
            continue
        if _walked_name(n):
            return False
        if domains and not is_dicom(folder / n) and _routable(folder / n):
            return False
    return True


def _domain_out_name(src: Path, suffix: str) -> str | None:
    """Output name of a domain input: GeoTIFF -> .tif, DICOM file -> .dcm, DICOM series folder -> a folder of the
    same name, NIfTI -> its own suffix (.nii, .nii.gz, .hdr), video -> its container; None for other inputs."""
    from srkit.domains import route

    domain = route(src)
    if domain is None:
        return None
    if domain.name == "video":  # a video keeps its container; --format names image formats
        return f"{src.stem}{suffix}{src.suffix}"
    if domain.name == "GeoTIFF":
        return f"{src.stem}{suffix}.tif"
    if domain.name == "DICOM":
        return f"{src.name}{suffix}" if src.is_dir() else f"{src.stem}{suffix}.dcm"
    low = src.name.lower()
    ext = next((e for e in (".nii.gz", ".nii", ".hdr") if low.endswith(e)), ".nii")
    stem = src.name[: len(src.name) - len(ext)] if low.endswith(ext) else src.stem
    return f"{stem}{suffix}{ext}"


def _out_name(src: Path, fmt: str | None, suffix: str) -> str:
    from srkit.io import output_suffix

    domain_name = _domain_out_name(src, suffix)  # domain files keep their format whatever --format says
    if domain_name is not None:
        return domain_name

    # --format, else the input's suffix; read-only inputs (GIF, PSD, PNM, QOI, JPEG XL) become PNG, or TIFF when
    # their header says 16-bit or float
    ext = "." + fmt if fmt is not None else output_suffix(src)
    return f"{src.stem}{suffix}{ext}"


def find_images(
    inputs: list[str], exclude: str | None = None, *, domains: bool = False
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]], list[str]]:
    """Image files of INPUTs: files, folders (walked recursively) and globs (expanded here, `**` included).

    Args:
        inputs: the command's INPUT arguments.
        exclude: a real path (an output folder) whose contents are never taken as inputs.
        domains: also take, from folders and globs, every file srkit routes by content (videos, DICOM files
            without a suffix, NIfTI, GeoTIFF), as `srkit upscale` does; image-only commands leave it off.

    Returns:
        (found as (file, path relative to its folder or glob base), failures as (input, reason), notes).
    """
    found: list[tuple[Path, Path]] = []
    failures: list[tuple[str, str]] = []
    notes: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.exists():
            if p.is_dir() and _is_series(p, domains):  # a DICOM series: one input (routed before walking)
                found.append((p, Path(p.name)))
            elif p.is_dir():
                images = _walk_images(p, exclude, domains)
                if not images:
                    notes.append(f"no images under '{p}'")
                found.extend((f, f.relative_to(p)) for f in images)
            else:
                found.append((p, Path(p.name)))
            continue
        if not _has_magic(item):
            failures.append((item, "no such file or folder"))
            continue
        base = _glob_base(item)
        n = 0
        for m in map(Path, sorted(glob.glob(item, recursive=True))):
            if m.is_dir() and _is_series(m, domains):
                found.append((m, m.relative_to(base) if m.is_relative_to(base) else Path(m.name)))
                n += 1
            elif m.is_dir():
                images = _walk_images(m, exclude, domains)
                found.extend((f, f.relative_to(base) if f.is_relative_to(base) else f.relative_to(m))
                             for f in images)
                n += len(images)
            elif _wanted(m, domains):
                if exclude is not None and os.path.realpath(m).startswith(exclude + os.sep):
                    continue  # our own outputs
                found.append((m, m.relative_to(base) if m.is_relative_to(base) else Path(m.name)))
                n += 1
        if n == 0:
            failures.append((item, "no image matches this pattern"))
    return found, failures, notes


def _check_output_name(src: Path, out: Path, fmt: str | None) -> None:
    """An output name whose suffix names no format, with no --format, is refused before any model is loaded
    (domain files — video, DICOM, NIfTI, GeoTIFF — name their own outputs)."""
    from srkit.domains import route
    from srkit.errors import ImageWriteError
    from srkit.io.formats import write_format

    if fmt is not None or route(src) is not None:
        return
    try:
        write_format(out, None)
    except ImageWriteError:
        raise typer.BadParameter(
            f"cannot tell the output format from '{out.name}': use a known suffix (.png .jpg .webp .tif .heic "
            ".avif .jp2 ...) or --format", param_hint="'-o'") from None


def plan_jobs(
    inputs: list[str], output: str, fmt: str | None, suffix: str, *, domains: bool = False
) -> tuple[list[Job], list[tuple[str, str]], list[str]]:
    """Expand INPUTs into jobs. `output` is a file for a single input file (unless it is an existing folder, ends
    with a path separator or has no suffix), else a folder. `domains`: as in `find_images` (`srkit upscale` and
    `srkit batch` set it: folders and globs give every file they would upscale on its own).

    Returns:
        (jobs, failures as (file, reason), notes). Failures are inputs that do not exist, globs that match
        nothing, outputs that are inputs and outputs claimed by two inputs.
    """
    from srkit.io.atomic import same_file

    failures: list[tuple[str, str]] = []
    notes: list[str] = []
    out = Path(output)
    single = (
        len(inputs) == 1 and Path(inputs[0]).is_file() and not out.is_dir() and not output.endswith(("/", os.sep))
        and out.suffix != ""
    )
    if single:
        jobs = [Job(Path(inputs[0]), out)]
        _check_output_name(Path(inputs[0]), out, fmt)
    else:
        if out.exists() and not out.is_dir():
            raise typer.BadParameter(
                f"'{out}' is a file; several inputs or a folder need an output folder", param_hint="'-o'"
            )
        named_like_a_file = out.suffix.lower() in IMAGE_SUFFIXES and not output.endswith(("/", os.sep))
        if not out.exists() and named_like_a_file:
            raise typer.BadParameter(
                f"'{out}' looks like a file name, but several inputs or a folder need an output folder (end it "
                "with / to make a folder of that name)", param_hint="'-o'"
            )
        found, failures, notes = find_images(inputs, os.path.realpath(out), domains=domains)
        jobs = [Job(src, out / rel.parent / _out_name(src, fmt, suffix)) for src, rel in found]
    # Refuse outputs that are inputs (of this run) and outputs claimed twice; drop exact duplicates.
    src_real = {os.path.realpath(j.src) for j in jobs}
    claimed: dict[str, Path] = {}
    kept: list[Job] = []
    for j in jobs:
        d = os.path.realpath(j.dst)
        if d in src_real or same_file(j.src, j.dst):
            failures.append(
                (str(j.src), f"output '{j.dst}' is an input file; choose another -o, --suffix or --format")
            )
            continue
        if d in claimed:
            if os.path.realpath(claimed[d]) != os.path.realpath(j.src):
                failures.append((str(j.src), f"output '{j.dst}' is also the output of '{claimed[d]}'"))
            continue
        claimed[d] = j.src
        kept.append(j)
    return kept, failures, notes


def remove_stale_temps(dst: Path) -> int:
    """Remove temp files a killed run left for `dst` (`write_image` names them `.<name>.<12 hex>.tmp`)."""
    pattern = re.compile(r"\." + re.escape(dst.name[:200]) + r"\.[0-9a-f]{12}\.tmp")
    n = 0
    try:
        entries = list(os.scandir(dst.parent))
    except OSError:
        return 0
    for e in entries:
        if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False):
            try:
                os.unlink(e.path)
                n += 1
            except OSError:
                pass
    return n


def stderr_lines():
    """``(console, interactive, say)``: ``say(line)`` prints one line on stderr (through rich on a terminal, so it
    does not tear a progress bar; plain and flushed otherwise)."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    interactive = err.is_terminal

    def say(line: str) -> None:
        if interactive:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return err, interactive, say


def reason(exc: BaseException, src: Path) -> str:
    """The one-line reason a file failed (srkit's own errors as they are, others with their type)."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"cannot read '{src}': "
    if msg.startswith(prefix):  # the file is named once, at the start of the line
        msg = "cannot read: " + msg[len(prefix):]
    if not isinstance(exc, Exception) or type(exc).__module__.startswith("srkit"):
        return msg
    return f"{type(exc).__name__}: {msg}"
