"""The model catalogue: third-party SR models srkit or spandrel can run, and the cache they are pulled into.

The catalogue srkit ships (`catalogue.json` next to this file) is built by `scripts/build_catalogue.py` from facts
taken from OpenModelDB's records (id, name, author, licence, architecture, scale, file sizes, SHA-256, direct URLs);
its `source` line says which commit and date. `srkit models --refresh` writes a newer copy from OpenModelDB's
published data into the cache; `load_catalogue` reads that copy when it is at least as new as the shipped one.

The cache is ``$SRKIT_CACHE`` when set, else the platform's cache folder (``$XDG_CACHE_HOME/srkit`` or
``~/.cache/srkit`` on Linux, ``~/Library/Caches/srkit`` on macOS, ``%LOCALAPPDATA%\\srkit\\Cache`` on Windows).
`srkit pull NAME` downloads a model into ``<cache>/models/NAME.<suffix>``; `load_model(NAME)` finds it there. A file
put there by hand under that name is found the same way.

Only files at a direct HTTP(S) address with a published SHA-256 are pulled; entries whose files are only on
Google Drive, Mega and the like are listed but not pullable. Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from srkit.errors import ConfigError, ModelLoadError

__all__ = [
    "CACHE_ENV", "CATALOGUE_FORMAT", "OPENMODELDB_URL", "SHIPPED_CATALOGUE", "SPANDREL_RUNS", "SRKIT_RUNS",
    "Catalogue", "Entry", "Resource", "cache_dir", "catalogue_from_records", "closest_names", "find_pulled",
    "is_direct_url", "load_catalogue", "models_dir", "not_pulled_message", "read_catalogue", "resolve_cached", "runner",
    "spandrel_installed", "user_catalogue_path", "write_catalogue",
]

#: The one environment variable that moves srkit's cache (pulled models, the refreshed catalogue, degraded LR).
CACHE_ENV = "SRKIT_CACHE"
CATALOGUE_FORMAT = "srkit-model-catalogue/1"
SHIPPED_CATALOGUE = Path(__file__).resolve().parent / "catalogue.json"
#: OpenModelDB's published data: every model record, keyed by model id (the site's static JSON API).
OPENMODELDB_URL = "https://openmodeldb.info/api/v1/models.json"
OPENMODELDB_PAGE = "https://openmodeldb.info/models/{id}"

# Suffix a pulled file is saved with, per OpenModelDB resource type, in order of preference.
_SUFFIXES = {"safetensors": ".safetensors", "pth": ".pth", "onnx": ".onnx"}
# Suffixes a file put into the cache by hand may have (looked up in this order).
_CACHED_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".onnx")
# The last path segment of a direct download ends like a weights file.
_WEIGHT_URL = re.compile(r"\.(safetensors|pth|pt|ckpt|onnx|bin|pth\.tar)$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9]+(?:[-_.+][A-Za-z0-9]+)*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# File hosts whose links open a web page rather than the file (name shown to the user).
_PAGE_HOSTS = {
    "drive.google.com": "Google Drive", "docs.google.com": "Google Drive", "mega.nz": "Mega",
    "mega.co.nz": "Mega", "mediafire.com": "MediaFire", "dropbox.com": "Dropbox", "onedrive.live.com": "OneDrive",
    "1drv.ms": "OneDrive", "sharepoint.com": "OneDrive", "pixeldrain.com": "Pixeldrain", "disk.yandex.ru": "Yandex",
    "disk.yandex.com": "Yandex", "yadi.sk": "Yandex", "icedrive.net": "Icedrive", "gofile.io": "Gofile",
    "workupload.com": "Workupload", "box.com": "Box", "wetransfer.com": "WeTransfer", "we.tl": "WeTransfer",
    "drive.proton.me": "Proton Drive", "pan.baidu.com": "Baidu", "icloud.com": "iCloud",
}

# OpenModelDB architecture id -> (srkit architecture whose detector loads those checkpoints, scales it builds).
# `srkit.models.model_from_state_dict` tries srkit's detectors first and spandrel after them, so a variant
# srkit's detector does not know still loads through spandrel when it is installed.
SRKIT_RUNS: dict[str, tuple[str, tuple[int, ...]]] = {
    "esrgan": ("rrdbnet", (1, 2, 4)),
    "compact": ("srvggnet-compact", (2, 3, 4)),
    "swinir": ("swinir", (2, 3, 4, 8)),
    "span": ("span", (2, 3, 4)),
    "edsr": ("edsr", (2, 3, 4)),
    "rcan": ("rcan", (2, 3, 4, 8)),
    "safmn": ("safmn", (2, 3, 4)),
}
# OpenModelDB architecture id -> spandrel's architecture id (spandrel >= 0.4; checked by the tests).
SPANDREL_RUNS: dict[str, str] = {
    "esrgan": "ESRGAN", "compact": "Compact", "swinir": "SwinIR", "swin2sr": "Swin2SR", "span": "SPAN",
    "hat": "HAT", "grl": "GRL", "omnisr": "OmniSR", "dat": "DAT", "drct": "DRCT", "atd": "ATD", "rgt": "RGT",
    "plksr": "PLKSR", "realplksr": "PLKSR", "realplksr-dysample": "PLKSR", "mosr": "MoSR", "moesr": "MoESR",
    "cugan": "RealCUGAN", "realcugan": "RealCUGAN", "swift-srgan": "SwiftSRGAN", "safmn": "SAFMN",
    "craft": "CRAFT", "ditn": "DITN", "dctlsa": "DCTLSA", "seemore": "SeemoRe", "rcan": "RCAN", "fdat": "FDAT",
    "scunet": "SCUNet", "fbcnn": "FBCNN", "drunet": "DRUNet", "dncnn": "DnCNN", "nafnet": "NAFNet",
}


# ----------------------------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """srkit's cache folder: ``$SRKIT_CACHE`` when set, else the platform's cache folder + ``srkit``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "srkit" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "srkit"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else home / ".cache") / "srkit"


def models_dir() -> Path:
    """Where pulled catalogue models are kept: ``<cache>/models``."""
    return cache_dir() / "models"


def user_catalogue_path() -> Path:
    """The catalogue copy `srkit models --refresh` writes: ``<cache>/catalogue.json``."""
    return cache_dir() / "catalogue.json"


def spandrel_installed() -> bool:
    """Whether spandrel can be imported (without importing it: that would import torch)."""
    return find_spec("spandrel") is not None


# ----------------------------------------------------------------------------------------------- entries


def _page_host(url: str) -> str | None:
    """Name of the file host when `url` opens a web page instead of the file, else None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for h, label in _PAGE_HOSTS.items():
        if host == h or host.endswith("." + h):
            return label
    if host in ("github.com", "huggingface.co") and re.search(r"/(blob|tree)/", parts.path):
        return "a GitHub page" if host == "github.com" else "a Hugging Face page"
    if parts.scheme not in ("http", "https") or not _WEIGHT_URL.search(parts.path):
        return f"a web page at {host}" if host else f"a {parts.scheme or 'relative'} address"
    return None


def is_direct_url(url: str) -> bool:
    """An http(s) address of the file itself (a weights file name, not a file host's page)."""
    return _page_host(url) is None


class Resource(BaseModel):
    """One file of a model (OpenModelDB's `resources`): platform, type, size in bytes, SHA-256, addresses."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    platform: str
    type: str
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = None
    urls: tuple[str, ...] = ()

    @field_validator("sha256", mode="before")
    @classmethod
    def _hex_digest(cls, v: Any) -> str | None:
        """Lower-case hex; anything that is not a SHA-256 digest counts as missing."""
        if v is None:
            return None
        s = str(v).strip().lower()
        return s if _SHA256.match(s) else None

    @property
    def suffix(self) -> str | None:
        """The file suffix srkit saves it with; None for formats srkit does not run (ncnn, ...)."""
        return _SUFFIXES.get(self.type) if self.platform in ("pytorch", "onnx") else None

    @property
    def direct_url(self) -> str | None:
        """The first direct HTTP(S) address of the file, if any."""
        return next((u for u in self.urls if is_direct_url(u)), None)

    @property
    def problem(self) -> str | None:
        """Why this file cannot be pulled (None: it can)."""
        if self.suffix is None:
            return f"{self.platform} {self.type} files are not run by srkit"
        if not self.urls:
            return "no download address"
        if self.direct_url is None:
            return f"only on {_page_host(self.urls[0])}"
        if self.sha256 is None:
            return "no SHA-256 published to check the download against"
        return None


class Entry(BaseModel):
    """One catalogue model (facts from its OpenModelDB record)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str
    author: str = ""
    license: str | None = None
    architecture: str
    scale: int = Field(ge=1, le=16)
    input_channels: int = Field(default=3, ge=1)
    output_channels: int = Field(default=3, ge=1)
    date: str = ""
    tags: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()

    @field_validator("id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        """Ids become file names in the cache: letters, digits and - _ . + between them only."""
        if not _ID.match(v):
            raise ValueError(f"bad model id {v!r}")
        return v

    @field_validator("author", mode="before")
    @classmethod
    def _authors(cls, v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return ", ".join(map(str, v))
        return "" if v is None else str(v)

    @field_validator("architecture")
    @classmethod
    def _arch_id(cls, v: str) -> str:
        return v.strip().lower()

    @property
    def resource(self) -> Resource | None:
        """The file `srkit pull` downloads: a pullable one, safetensors before pth before onnx."""
        ok = [r for r in self.resources if r.problem is None]
        order = list(_SUFFIXES)
        return min(ok, key=lambda r: order.index(r.type), default=None)

    @property
    def pull_problem(self) -> str | None:
        """Why `srkit pull` refuses this model (None: it can be pulled)."""
        if self.resource is not None:
            return None
        problems = [r.problem for r in self.resources if r.suffix is not None] or [r.problem for r in self.resources]
        return next((p for p in problems if p), "no files listed")

    @property
    def size(self) -> int | None:
        """Bytes of the file `srkit pull` downloads (or of the first file listed)."""
        r = self.resource or (self.resources[0] if self.resources else None)
        return None if r is None else r.size

    @property
    def filename(self) -> str:
        """Its file name in the cache: ``<id><suffix>`` (.pth when nothing can be pulled)."""
        r = self.resource or next((r for r in self.resources if r.suffix), None)
        return self.id + (r.suffix if r is not None and r.suffix else ".pth")

    @property
    def where(self) -> str:
        """Where to get the file by hand: its first address, else its OpenModelDB page."""
        urls = [u for r in self.resources for u in r.urls]
        return urls[0] if urls else OPENMODELDB_PAGE.format(id=self.id)

    @property
    def page(self) -> str:
        return OPENMODELDB_PAGE.format(id=self.id)


def runner(entry: Entry) -> str | None:
    """What runs this model's architecture: "srkit" (its own architectures), "spandrel", or None (nothing)."""
    native = SRKIT_RUNS.get(entry.architecture)
    if native is not None and entry.scale in native[1]:
        return "srkit"
    if entry.architecture in SPANDREL_RUNS:
        return "spandrel"
    return None


# ----------------------------------------------------------------------------------------------- catalogue


class Catalogue(BaseModel):
    """The catalogue file: where its facts come from, their date and the models."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: str = CATALOGUE_FORMAT
    source: str
    date: str
    retrieved: str | None = None
    kept: str | None = None
    models: tuple[Entry, ...]
    origin: str = Field(default="", exclude=True)

    @field_validator("date")
    @classmethod
    def _iso_date(cls, v: str) -> str:
        if not _DATE.match(v):
            raise ValueError(f"date must be YYYY-MM-DD, got {v!r}")
        return v

    def get(self, name: str) -> Entry | None:
        """The entry with id `name` (exact, else ignoring case), or None."""
        by_id = {e.id: e for e in self.models}
        if name in by_id:
            return by_id[name]
        folded = {e.id.lower(): e for e in self.models}
        return folded.get(name.lower())

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.models]


def read_catalogue(path: str | Path) -> Catalogue:
    """Read and validate a catalogue file.

    Raises:
        ConfigError: missing, not JSON, or not a catalogue (one line naming the file and the first problem).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != CATALOGUE_FORMAT:
            raise ValueError(f"not a {CATALOGUE_FORMAT} file")
        return Catalogue.model_validate({**data, "origin": str(path)})
    except OSError as e:
        raise ConfigError(f"cannot read the model catalogue {str(path)!r}: {e.strerror or e}") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ConfigError(f"bad model catalogue {str(path)!r}: {where}: {first['msg']}") from None
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise ConfigError(f"bad model catalogue {str(path)!r}: {e}") from None


def load_catalogue(*, on_ignored: Callable[[str], None] | None = None) -> Catalogue:
    """The catalogue to use: the refreshed copy in the cache when it is at least as new as the shipped one.

    Args:
        on_ignored: called with a one-line reason when the cache copy exists but cannot be read (the shipped
            catalogue is used then).
    """
    shipped = read_catalogue(SHIPPED_CATALOGUE)
    mine = user_catalogue_path()
    if mine.is_file():
        try:
            refreshed = read_catalogue(mine)
        except ConfigError as e:
            if on_ignored is not None:
                on_ignored(f"ignored the refreshed catalogue ({e})")
            return shipped
        if refreshed.date >= shipped.date:
            return refreshed
    return shipped


def write_catalogue(catalogue: Catalogue, path: str | Path) -> Path:
    """Write a catalogue as JSON, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = catalogue.model_dump(mode="json", exclude_none=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


# OpenModelDB's record field names -> the catalogue's.
_RENAMED = {"inputChannels": "input_channels", "outputChannels": "output_channels"}


def _records(data: Any) -> Iterable[tuple[str | None, Any]]:
    """(id, record) pairs of OpenModelDB's published JSON ({id: record}) or of a catalogue ({models: [...]})."""
    if isinstance(data, Mapping) and isinstance(data.get("models"), list):
        return ((None, r) for r in data["models"])
    if isinstance(data, Mapping):
        return data.items()
    if isinstance(data, list):
        return ((None, r) for r in data)
    raise ConfigError("the model data is neither OpenModelDB's {id: model} object nor a catalogue")


def catalogue_from_records(data: Any, *, source: str, date: str | None = None,
                           retrieved: str | None = None) -> tuple[Catalogue, int]:
    """Build a catalogue from OpenModelDB's published JSON (or another catalogue's), keeping the facts only.

    Records that do not validate (no architecture, a bad id, ...) are skipped and counted.

    Returns:
        (catalogue sorted by id, number of records skipped).

    Raises:
        ConfigError: not model data at all, or not one valid record in it.
    """
    entries: dict[str, Entry] = {}
    skipped = 0
    for key, record in _records(data):
        if not isinstance(record, Mapping):
            skipped += 1
            continue
        fields = {_RENAMED.get(k, k): v for k, v in record.items()}
        if key is not None:
            fields["id"] = key
        try:
            entry = Entry.model_validate(fields)
        except ValidationError:
            skipped += 1
            continue
        entries[entry.id] = entry
    if not entries:
        raise ConfigError(f"no valid model record in the data ({skipped} skipped)")
    now = datetime.now(timezone.utc)
    catalogue = Catalogue(
        source=source,
        date=date or now.strftime("%Y-%m-%d"),
        retrieved=retrieved,
        models=tuple(entries[k] for k in sorted(entries, key=str.lower)),
    )
    return catalogue, skipped


# ----------------------------------------------------------------------------------------------- names


def find_pulled(name: str) -> Path | None:
    """The file ``<cache>/models/<name>.<suffix>`` (pulled, or put there by hand), or None."""
    if not _ID.match(name):
        return None
    folder = models_dir()
    for suffix in _CACHED_SUFFIXES:
        p = folder / f"{name}{suffix}"
        if p.is_file():
            return p
    return None


def _megabytes(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / 1e6:,.1f} MB"


def not_pulled_message(entry: Entry) -> str:
    """One line: how to get a catalogue model that is not in the cache."""
    dest = models_dir() / entry.filename
    problem = entry.pull_problem
    if problem is None:
        return (f"{entry.id} is in the model catalogue but not pulled: run `srkit pull {entry.id}` (downloads "
                f"{_megabytes(entry.size)}), or put the file at {dest}")
    return f"{entry.id} cannot be pulled ({problem}): download it from {entry.where} and put it at {dest}"


def resolve_cached(name: str) -> Path | None:
    """For `load_model`: the cached file of catalogue model `name` (id in any case, or a file in the cache).

    Returns None when `name` is neither a catalogue id nor a file in ``<cache>/models``.

    Raises:
        ModelLoadError: `name` is a catalogue model that is not in the cache (the message says how to get it).
    """
    found = find_pulled(name)
    if found is not None:
        return found
    try:
        entry = load_catalogue().get(name)
    except ConfigError:
        return None
    if entry is None:
        return None
    found = find_pulled(entry.id)
    if found is not None:
        return found
    raise ModelLoadError(not_pulled_message(entry))


def closest_names(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` of `candidates` closest to `name` (difflib, ignoring case), best first."""
    folded: dict[str, str] = {}
    for c in candidates:
        folded.setdefault(c.lower(), c)
    return [folded[m] for m in difflib.get_close_matches(name.lower(), list(folded), n=n, cutoff=0.6)]
