"""Downloads for the model catalogue (standard library only): resumable, SHA-256 checked, atomic.

`download` fetches a file into ``DEST.part`` and renames it to DEST only once its SHA-256 matches: a dropped
connection or a timeout is retried, each try resuming where the last one stopped (HTTP Range), and the ``.part``
file left by an interrupted run is resumed by the next one. A checksum mismatch deletes the download.
`fetch_json` reads OpenModelDB's published data for `srkit models --refresh`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from srkit import __version__
from srkit.errors import DownloadError

__all__ = ["download", "fetch_json", "sha256_file"]

USER_AGENT = f"srkit/{__version__} (python urllib)"
CHUNK = 1 << 16
#: Most bytes `fetch_json` reads (OpenModelDB's whole database is a few MB).
MAX_JSON_BYTES = 256 << 20

#: progress(bytes done, bytes in all or None when unknown)
Progress = Callable[[int, "int | None"], None]


class _Retry(Exception):
    """A failure worth another try (dropped connection, timeout, 5xx); the message is one line."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open(url: str, timeout: float, offset: int = 0) -> http.client.HTTPResponse:
    """GET `url` (from byte `offset`); HTTP errors become DownloadError (permanent) or _Retry (transient)."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s)/file only, checked by callers
    except urllib.error.HTTPError as e:
        e.close()
        msg = f"HTTP {e.code} {e.reason} from {url}"
        if e.code in (408, 425, 429) or e.code >= 500:
            raise _Retry(msg) from None
        raise DownloadError(msg) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Retry(f"no answer from {url} within {timeout:g} s") from None
        raise _Retry(f"cannot reach {url}: {getattr(reason, 'strerror', None) or reason}") from None
    except (TimeoutError, socket.timeout):
        raise _Retry(f"no answer from {url} within {timeout:g} s") from None
    except (http.client.HTTPException, ConnectionError) as e:
        raise _Retry(f"{url}: {type(e).__name__}: {e}") from None


def _resume_start(resp: http.client.HTTPResponse) -> int | None:
    """The first byte of a 206 answer (Content-Range), None when it cannot be read."""
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else None


def _fetch_into(url: str, part: Path, *, timeout: float, size: int | None, progress: Progress | None) -> None:
    """One try: append to (resume) or rewrite `part` with the body of `url`.

    Raises:
        _Retry: the connection dropped or stalled; what arrived stays in `part`.
        DownloadError: a permanent HTTP error, more bytes than expected, or `part` cannot be written.
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        offset = 0
    if size is not None and offset == size and offset > 0:
        return  # a complete .part from an earlier run: the checksum decides
    try:
        resp = _open(url, timeout, offset)
    except DownloadError as e:
        if offset and "HTTP 416 " in str(e):
            return  # the range starts at the end: the .part is complete (or wrong, which the checksum tells)
        raise
    with resp:
        if offset and resp.status == 206 and _resume_start(resp) == offset:
            mode = "ab"
        else:
            mode, offset = "wb", 0  # the server sent the whole file
        length = resp.headers.get("Content-Length")
        body = int(length) if length and length.isdigit() else None
        total = offset + body if body is not None else size
        done = offset
        if progress is not None:
            progress(done, total)
        try:
            f = open(part, mode)
        except OSError as e:
            raise DownloadError(f"cannot write {part}: {e.strerror or e}") from None
        with f:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (TimeoutError, socket.timeout):
                    raise _Retry(f"{url} stalled for {timeout:g} s after {done:,} bytes") from None
                except (http.client.HTTPException, OSError) as e:
                    raise _Retry(f"connection to {url} dropped after {done:,} bytes ({type(e).__name__})") from None
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DownloadError(f"cannot write {part}: {e.strerror or e}") from None
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
                if total is not None and done > total:
                    raise DownloadError(f"{url} sent more than the {total:,} bytes expected")
    if total is not None and done < total:
        raise _Retry(f"connection to {url} closed after {done:,} of {total:,} bytes")


def download(urls: Sequence[str], dest: str | Path, *, sha256: str | None, size: int | None = None,
             timeout: float = 30.0, retries: int = 3, progress: Progress | None = None,
             backoff: float = 0.5) -> Path:
    """Download a file to `dest` through ``dest.part``; verify it; rename it into place (mode 0644).

    Args:
        urls: addresses of the same file, tried in turn (mirrors).
        sha256: expected hex digest; a mismatch deletes the download. None skips the check.
        size: expected size in bytes, if known (a longer ``.part`` is started again).
        timeout: seconds to wait for the connection or for the next bytes.
        retries: further tries per address after a dropped connection, a timeout or a 5xx answer; each try
            resumes from the bytes already in ``dest.part``.
        progress: called with (bytes done, bytes in all or None).
        backoff: seconds before the first retry (doubled each time, at most 8 s).

    Raises:
        DownloadError: every address failed (the last reason), or the SHA-256 does not match. One line.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {dest.parent}: {e.strerror or e}") from None
    failures: list[str] = []
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            failures.append(f"not an http(s) address: {url}")
            continue
        for attempt in range(retries + 1):
            try:
                _fetch_into(url, part, timeout=timeout, size=size, progress=progress)
            except _Retry as e:
                if attempt == retries:
                    resume = "; run again to resume" if part.exists() and part.stat().st_size else ""
                    failures.append(f"{e} (tried {retries + 1} times{resume})")
                else:
                    time.sleep(min(backoff * 2 ** attempt, 8.0))
                continue
            except DownloadError as e:
                failures.append(str(e))
                break
            return _verify_and_place(part, dest, sha256)
    raise DownloadError(failures[-1] if failures else "no address to download from")


def _verify_and_place(part: Path, dest: Path, sha256: str | None) -> Path:
    if sha256 is not None:
        digest = sha256_file(part)
        if digest != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{dest.name}: SHA-256 mismatch (got {digest[:16]}..., expected {sha256[:16]}...); the download "
                "was deleted")
    try:
        os.chmod(part, 0o644)
        os.replace(part, dest)
    except OSError as e:
        raise DownloadError(f"cannot move the download to {dest}: {e.strerror or e}") from None
    return dest


def fetch_json(url: str, *, timeout: float = 30.0, retries: int = 2, backoff: float = 0.5) -> Any:
    """GET `url` (http, https or file) and parse it as JSON.

    Raises:
        DownloadError: unreachable, an HTTP error, too big, or not JSON.
    """
    if not url.lower().startswith(("http://", "https://", "file:")):
        raise DownloadError(f"not an http(s) or file address: {url}")
    last = ""
    if url.lower().startswith("file:"):
        retries = 0  # a local file does not come back by waiting
    for attempt in range(retries + 1):
        try:
            with _open(url, timeout) as resp:
                data = resp.read(MAX_JSON_BYTES + 1)
            break
        except _Retry as e:
            last = str(e)
        except (TimeoutError, socket.timeout):
            last = f"{url} stalled for {timeout:g} s"
        except (http.client.HTTPException, OSError) as e:
            last = f"connection to {url} dropped ({type(e).__name__})"
        if attempt < retries:
            time.sleep(min(backoff * 2 ** attempt, 8.0))
    else:
        raise DownloadError(last)
    if len(data) > MAX_JSON_BYTES:
        raise DownloadError(f"{url} is larger than {MAX_JSON_BYTES >> 20} MB: not model data")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DownloadError(f"{url} is not JSON ({str(e).splitlines()[0][:120]})") from None
