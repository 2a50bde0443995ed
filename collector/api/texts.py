"""What the API says to people, in their language: the `detail` of an error a person reads
(at a console, in a browser, in a script's output) follows the request's Accept-Language,
since one collector answers officers and technicians in either language. Field names,
machine values and the OpenAPI document stay English.

An endpoint raises `Refusal` with the English text and its values; the app's handler
(`refused`) puts it into the asker's language. The English text is also the exception's
own detail, so code that reads it without a request (tests, logs) sees English.
"""

from collections.abc import Mapping
from typing import cast

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from collector.i18n import web
from iotruntime.i18n import LANGUAGES, N_, UnknownLanguage, best_language, parse_language

NO_ALERT = N_("no alert {alert}")


def language_of(headers: Headers) -> str:
    """The language a request asks its answers in: its Accept-Language, else English."""
    return best_language(headers.get("accept-language", ""))


def translated(text: str, language: str, **values: object) -> str:
    """`text` (marked with `N_`) in `language`, its named placeholders filled."""
    return web.for_language(language).gettext(text).format(**values)


class Refusal(HTTPException):
    """An HTTP error whose detail a person reads."""

    def __init__(
        self,
        status: int,
        text: str,
        headers: Mapping[str, str] | None = None,
        **values: object,
    ) -> None:
        super().__init__(status, text.format(**values), dict(headers) if headers else None)
        self.text = text
        self.values = values

    def detail_in(self, language: str) -> str:
        return translated(self.text, language, **self.values)


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler of `Refusal` (registered for it alone): the detail in the
    request's language."""
    refusal = cast(Refusal, exc)
    return JSONResponse(
        {"detail": refusal.detail_in(language_of(request.headers))},
        refusal.status_code,
        headers=dict(refusal.headers or {}),
    )


def chosen_language(headers: Headers, asked: str | None, configured: str | None) -> str:
    """A screen's or page's language: the one its URL asks for (`?lang=`, refused with
    the choices when unknown), else the configured one, else the browser's."""
    if asked is not None:
        try:
            return parse_language(asked)
        except UnknownLanguage:
            raise Refusal(
                400,
                N_("unknown language {value}: use one of {choices}"),
                value=repr(asked),
                choices=", ".join(LANGUAGES),
            ) from None
    return configured or language_of(headers)
