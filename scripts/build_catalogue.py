#!/usr/bin/env python
"""Build the model catalogue srkit ships (src/srkit/catalog/catalogue.json) from the reference facts.

    python scripts/build_catalogue.py                    # ../shared/reference/model_catalogue.json -> the package
    python scripts/build_catalogue.py --check            # exit 1 if the shipped file differs from a fresh build
    python scripts/build_catalogue.py REF.json -o OUT.json

The reference holds facts taken from OpenModelDB's model records (id, name, author, licence, architecture, scale,
channels, tags, file sizes, SHA-256 and direct URLs) and a `source` line naming the OpenModelDB commit and its date;
the catalogue keeps that line verbatim and takes its date from it. Every record is validated by `srkit.catalog`
(the same rules as `srkit models --refresh`); a record that does not validate stops the build.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from srkit.catalog import SHIPPED_CATALOGUE, Catalogue, Entry, runner  # noqa: E402

DEFAULT_REFERENCE = REPO.parent / "shared" / "reference" / "model_catalogue.json"


def build(reference: Path) -> Catalogue:
    data = json.loads(reference.read_text(encoding="utf-8"))
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise SystemExit(f"{reference}: no `source` line")
    m = re.search(r"\((\d{4}-\d{2}-\d{2})\)", source)
    if m is None:
        raise SystemExit(f"{reference}: the source line has no (YYYY-MM-DD) date: {source!r}")
    entries = []
    for i, record in enumerate(data.get("models", [])):
        try:
            entries.append(Entry.model_validate(record))
        except ValueError as e:
            raise SystemExit(f"{reference}: model #{i} ({record.get('id')!r}) does not validate:\n{e}") from None
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"{reference}: duplicate model ids")
    kept = data.get("kept")
    return Catalogue(source=source, date=m.group(1), kept=kept if isinstance(kept, str) else None,
                     models=tuple(sorted(entries, key=lambda e: e.id.lower())))


def render(catalogue: Catalogue) -> str:
    return json.dumps(catalogue.model_dump(mode="json", exclude_none=True), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("reference", nargs="?", type=Path, default=DEFAULT_REFERENCE, help="reference facts (JSON)")
    ap.add_argument("-o", "--output", type=Path, default=SHIPPED_CATALOGUE, help="catalogue to write")
    ap.add_argument("--check", action="store_true", help="only compare with the existing output")
    args = ap.parse_args(argv)
    catalogue = build(args.reference)
    text = render(catalogue)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/build_catalogue.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date ({len(catalogue.models)} models)")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    pullable = sum(e.pull_problem is None for e in catalogue.models)
    runs = sum(runner(e) is not None for e in catalogue.models)
    print(f"wrote {args.output}: {len(catalogue.models)} models ({pullable} pullable, {runs} srkit or spandrel can run)"
          f" from {catalogue.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
