"""Languages: Vietnamese for the people who use the system, English kept.

Texts are marked with gettext and translated from catalogs in the repository
(`<package>/locale/vi/LC_MESSAGES/<domain>.po`, compiled to `.mo` by `make catalogs`;
`scripts/catalogs.py` extracts, compiles and checks them). One domain per surface, so the
command lines, the reports and the web pages each keep a catalog of their own vocabulary.

A command's language is the process's: `--lang` on its command line, else the locale
variables a field laptop already sets (`LANGUAGE`, `LC_ALL`, `LC_MESSAGES`, `LANG`), else
English. It is decided at the first translated text, before the CLI's help texts are made
at import. A report or a web page asks for its own language instead (`Catalog.for_language`),
since one collector serves officers and screens in either.
"""

import functools
import gettext
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

ENGLISH = "en"
VIETNAMESE = "vi"
LANGUAGES = (ENGLISH, VIETNAMESE)
# Babel's locale for each language: formats of numbers and dates.
_LOCALES = {ENGLISH: "en_GB", VIETNAMESE: "vi_VN"}
# Vietnamese readers write a day as dd/mm/yyyy; English keeps the ISO form the files use.
_DAY_PATTERNS = {ENGLISH: "yyyy-MM-dd", VIETNAMESE: "dd/MM/yyyy"}
_TIME_PATTERNS = {ENGLISH: "yyyy-MM-dd HH:mm", VIETNAMESE: "HH:mm dd/MM/yyyy"}
_ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


class UnknownLanguage(ValueError):
    """A language asked for by name that the system has no texts for."""

    def __init__(self, value: str) -> None:
        super().__init__(f"unknown language {value!r}: use one of {', '.join(LANGUAGES)}")


def language_of(value: str) -> str | None:
    """The supported language a locale name means (`vi_VN.UTF-8`, `vi-VN`, `vi` → `vi`;
    `C` and `POSIX` → English), or None for a language the system does not speak."""
    name = value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if name in ("c", "posix"):
        return ENGLISH
    return name if name in LANGUAGES else None


def parse_language(value: str) -> str:
    """A language given by a person (`--lang vi`, `?lang=vi`, a config key): refused with
    the choices when unknown, rather than quietly shown in English."""
    language = language_of(value)
    if language is None:
        raise UnknownLanguage(value)
    return language


def language_from(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """A command's language: `--lang X` or `--lang=X` anywhere on its line first, then the
    locale variables in the order gettext reads them. An unknown `--lang` falls back here;
    the command's own option refuses it with a clear error."""
    for index, word in enumerate(argv):
        given = None
        if word == "--lang" and index + 1 < len(argv):
            given = argv[index + 1]
        elif word.startswith("--lang="):
            given = word.partition("=")[2]
        if given is not None and (language := language_of(given)) is not None:
            return language
    for variable in _ENVIRONMENT:
        for name in environ.get(variable, "").split(":"):
            if name and (language := language_of(name)) is not None:
                return language
        if environ.get(variable):
            return ENGLISH
    return ENGLISH


@functools.cache
def process_language() -> str:
    """This process's language, decided once."""
    return language_from(sys.argv[1:], os.environ)


def use_process_language_for_libraries() -> None:
    """Let Click's and Typer's own texts ("Usage:", "Options", "Missing option") follow the
    command's language: they call the standard `gettext.gettext`, which reads the
    application's text domain and the locale variables, so a `--lang` that differs from
    them is written into `LANGUAGE` (which the command's own children then inherit too).
    Called by each CLI package before Typer is imported: Typer makes some texts at import,
    so Typer's Click texts are put in place here too."""
    language = process_language()
    if language_from([], os.environ) != language:
        os.environ["LANGUAGE"] = language
    gettext.bindtextdomain(LIBRARY_DOMAIN, str(_LOCALEDIR))
    gettext.textdomain(LIBRARY_DOMAIN)
    # Typer's own copy of Click has no gettext (iotruntime/typer_texts.py). Its layout is
    # Typer's private business: a Typer laid out otherwise keeps those few texts English
    # rather than stopping the command, and tests/edge_agent/test_cli_language.py fails.
    try:
        from iotruntime.typer_texts import use_process_language_for_typer

        use_process_language_for_typer()
    except (ImportError, AttributeError):
        logging.getLogger(__name__).debug("Typer's usage and error texts stay English")


def N_(message: str) -> str:
    """Marks a text for the catalog where it is defined (a table of names, a band's
    advice) and leaves it English: it is translated where its reader's language is known."""
    return message


class Catalog:
    """One domain's translations. `gettext` translates into the process's language (for a
    command); `for_language` gives the translations of one report or one screen."""

    def __init__(self, domain: str, localedir: Path) -> None:
        self.domain = domain
        self.localedir = localedir

    @functools.cache  # noqa: B019 - a catalog lives as long as the process
    def for_language(self, language: str) -> gettext.NullTranslations:
        if language == ENGLISH:
            return gettext.NullTranslations()
        return gettext.translation(
            self.domain, str(self.localedir), languages=[language], fallback=True
        )

    def gettext(self, message: str) -> str:
        return self.for_language(process_language()).gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.for_language(process_language()).ngettext(singular, plural, count)


_LOCALEDIR = Path(__file__).parent / "locale"
# Click's, Typer's and this package's own texts: the shared parts of both command lines.
LIBRARY_DOMAIN = "cli"
shared = Catalog(LIBRARY_DOMAIN, _LOCALEDIR)
_ = shared.gettext


def number(value: float, language: str, digits: int | None = None) -> str:
    """A number as a reader of `language` writes it: 1.234,5 in Vietnamese, 1,234.5 in
    English; `digits` fixes the decimals shown, else up to three are kept."""
    pattern = "#,##0." + ("0" * digits if digits is not None else "###")
    if digits == 0:
        pattern = "#,##0"
    return format_decimal(value, format=pattern, locale=_LOCALES[language])


def day(value: date, language: str) -> str:
    """A calendar day as a reader of `language` writes it (01/12/2026 in Vietnamese)."""
    return format_date(value, _DAY_PATTERNS[language], locale=_LOCALES[language])


def moment(value: datetime, language: str) -> str:
    """A time of day on a day, as a reader of `language` writes it, in `value`'s own zone."""
    return format_datetime(
        value, _TIME_PATTERNS[language], tzinfo=value.tzinfo, locale=_LOCALES[language]
    )


def best_language(accept_language: str) -> str:
    """The language of a browser's `Accept-Language` header, by its weights: the first
    supported one the person ranks highest, else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        name, _sep, parameters = part.strip().partition(";")
        weight = 1.0
        if parameters.strip().startswith("q="):
            try:
                weight = float(parameters.strip()[2:])
            except ValueError:
                continue
        language = language_of(name) if name and name != "*" else None
        if language is not None and weight > 0:
            ranked.append((-weight, position, language))
    return min(ranked)[2] if ranked else ENGLISH
