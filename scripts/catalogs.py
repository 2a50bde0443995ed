"""The Vietnamese catalogs: extract the marked texts into them, compile them, check them.

    python scripts/catalogs.py extract   # add new texts to each .po, drop gone ones
    python scripts/catalogs.py compile   # .po -> .mo (make does it; the .mo are not kept)
    python scripts/catalogs.py check     # exit 1 naming every text without a translation

One domain per surface (see `iotruntime/i18n.py`); each lists the files its texts come
from. The `cli` domain also takes Typer's own gettext texts (its help panels) from the
installed package, so a newer Typer with a new text fails the check until it is
translated. Typer's copy of Click has no gettext: its few texts people meet are given
Vietnamese by iotruntime/typer_texts.py.
"""

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "vi"
_JINJA = "jinja2.ext:babel_extract"


@dataclass(frozen=True)
class Domain:
    name: str
    localedir: Path
    # (directory, glob, Babel extraction method); files under a `vendor` folder are skipped.
    sources: tuple[tuple[Path, str, str], ...]
    excluded: tuple[Path, ...] = ()

    @property
    def po(self) -> Path:
        return self.localedir / LANGUAGE / "LC_MESSAGES" / f"{self.name}.po"

    def files(self) -> Iterator[tuple[Path, str]]:
        for directory, pattern, method in self.sources:
            for path in sorted(directory.glob(pattern)):
                if "vendor" in path.parts or any(path.is_relative_to(x) for x in self.excluded):
                    continue
                yield path, method


_COLLECTOR = ROOT / "collector"
_COMMANDS = _COLLECTOR / "cli"
# The export command speaks the reports' vocabulary, so its texts are in their catalog.
_EXPORT_COMMAND = _COMMANDS / "exports.py"
_REPORT_DIRS = (_COLLECTOR / "exports", _COLLECTOR / "compliance")
_WEB_DIRS = (_COLLECTOR / "api", _COLLECTOR / "wall")
DOMAINS = (
    Domain(
        "cli",
        ROOT / "iotruntime" / "locale",
        (
            (ROOT / "iotruntime", "**/*.py", "python"),
            (Path(typer.__file__).parent, "*.py", "python"),
        ),
    ),
    Domain(
        "edge_agent",
        ROOT / "edge_agent" / "locale",
        ((ROOT / "edge_agent", "**/*.py", "python"),),
    ),
    Domain(
        "collector",
        _COLLECTOR / "locale",
        ((_COMMANDS, "**/*.py", "python"),),
        excluded=(_EXPORT_COMMAND,),
    ),
    Domain(
        "services",
        _COLLECTOR / "locale",
        ((_COLLECTOR, "**/*.py", "python"),),
        excluded=(_COMMANDS, *_REPORT_DIRS, *_WEB_DIRS),
    ),
    Domain(
        "reports",
        _COLLECTOR / "locale",
        (
            *((d, "**/*.py", "python") for d in _REPORT_DIRS),
            (_COMMANDS, "exports.py", "python"),
            (_COLLECTOR / "exports" / "templates", "*.j2", _JINJA),
        ),
    ),
    Domain(
        "web",
        _COLLECTOR / "locale",
        (
            *((d, "**/*.py", "python") for d in _WEB_DIRS),
            (_COLLECTOR / "wall" / "static", "*.js", "javascript"),
            (_COLLECTOR / "wall" / "pages", "*.html", _JINJA),
        ),
    ),
)


def extracted(domain: Domain) -> Catalog:
    """Every text marked in the domain's files, with where it is used."""
    catalog = Catalog(locale=LANGUAGE, domain=domain.name, project="phuquoc-telemetry")
    for path, method in domain.files():
        library = not path.is_relative_to(ROOT) or ".venv" in path.relative_to(ROOT).parts
        shown = Path(path.parent.name, path.name) if library else path.relative_to(ROOT)
        for line, message, comments, context in extract_from_file(
            method, path, keywords=DEFAULT_KEYWORDS, comment_tags=("Translators:",)
        ):
            catalog.add(
                message,
                locations=[(str(shown), line)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def _read(domain: Domain) -> Catalog:
    if not domain.po.exists():
        return Catalog(locale=LANGUAGE, domain=domain.name, project="phuquoc-telemetry")
    with domain.po.open("rb") as file:
        return read_po(file, locale=LANGUAGE, domain=domain.name)


def extract(domain: Domain) -> None:
    catalog = _read(domain)
    catalog.update(extracted(domain), no_fuzzy_matching=True)
    catalog.obsolete.clear()
    domain.po.parent.mkdir(parents=True, exist_ok=True)
    with domain.po.open("wb") as file:
        write_po(file, catalog, width=100, sort_output=False)


def compile_mo(domain: Domain) -> None:
    catalog = _read(domain)
    with domain.po.with_suffix(".mo").open("wb") as file:
        write_mo(file, catalog, use_fuzzy=False)


_PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\(\w+\)[sdrf]|%[sdrf]")


def _placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))


def problems(domain: Domain) -> list[str]:
    """What keeps the domain's Vietnamese from being whole: a text the catalog lacks or
    leaves untranslated (or fuzzy), a placeholder a translation drops or adds, an entry
    whose text no file uses any more."""
    wanted = extracted(domain)
    have = _read(domain)
    found: list[str] = []
    for message in wanted:
        if not message.id:
            continue
        entry = have.get(message.id, context=message.context)
        where = ", ".join(f"{path}:{line}" for path, line in message.locations[:2])
        shown = message.id if isinstance(message.id, str) else message.id[0]
        if entry is None:
            found.append(f"{domain.name}: not in the catalog ({where}): {shown!r}")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy or not all(strings):
            found.append(f"{domain.name}: no Vietnamese ({where}): {shown!r}")
            continue
        # A plural's translation may use any placeholder either English form uses: a
        # Vietnamese noun has one form, which serves the singular and the plural alike.
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        allowed = {p for text in ids for p in _placeholders(text)}
        if any(
            set(_placeholders(s)) != allowed
            if len(ids) > 1
            else _placeholders(s) != _placeholders(ids[0])
            for s in strings
        ):
            found.append(f"{domain.name}: placeholders differ ({where}): {shown!r}")
    wanted_ids = {(m.id, m.context) for m in wanted if m.id}
    found.extend(
        f"{domain.name}: no longer used: {m.id!r}"
        for m in have
        if m.id and (m.id, m.context) not in wanted_ids
    )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("extract", "compile", "check"))
    parser.add_argument("--domain", action="append", help="only these domains")
    args = parser.parse_args()
    chosen = [d for d in DOMAINS if not args.domain or d.name in args.domain]
    if args.action == "check":
        found = [p for domain in chosen for p in problems(domain)]
        for problem in found:
            print(problem)
        print(f"{len(found)} problem(s) in {len(chosen)} catalog(s)")
        return 1 if found else 0
    for domain in chosen:
        extract(domain) if args.action == "extract" else compile_mo(domain)
        print(f"{args.action}: {domain.po.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
