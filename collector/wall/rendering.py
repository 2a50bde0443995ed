"""The wall's pages (collector/wall/pages/) in one language, without a template engine:
the api extra has no jinja2, and the pages need only two things filled in.

A page marks its texts as jinja2 would, `{{ _("Sign out") }}`, so the catalog's jinja2
extractor finds them, and names its values `{{ lang }}`; `fill` replaces both in one pass,
so nothing a value brings in is read as a mark. The scripts' texts go to the page as a
JSON dictionary of the `web` catalog (`texts`), which wall.js looks them up in.
"""

import functools
import json
import re
from html import escape
from pathlib import Path

from babel.messages.mofile import read_mo

from collector.i18n import web
from iotruntime.i18n import ENGLISH

PAGES = Path(__file__).parent / "pages"
_MARK = re.compile(r'\{\{ _\("((?:[^"\\]|\\.)*)"\) \}\}|\{\{ (\w+) \}\}')


def fill(page: str, language: str, **values: str) -> str:
    """`page` with its marked texts in `language` (HTML-escaped) and its named values as
    given: the caller escapes each value for where it goes."""
    text = web.for_language(language).gettext

    def replace(found: re.Match[str]) -> str:
        marked, name = found.groups()
        if marked is not None:
            return escape(text(json.loads(f'"{marked}"')))
        return values[name]

    return _MARK.sub(replace, page)


@functools.cache
def texts(language: str) -> str:
    """The `web` catalog's translations into `language` as JSON that can stand inside a
    <script> element: `<` is written as its escape, so no text can close the element."""
    found: dict[str, str] = {}
    if language != ENGLISH:
        mo = web.localedir / language / "LC_MESSAGES" / f"{web.domain}.mo"
        if mo.exists():
            with mo.open("rb") as file:
                found = {
                    m.id: m.string
                    for m in read_mo(file)
                    if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string
                }
    return json.dumps(found, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")
