"""Rows as the API answers them: JSON, or CSV with the same column names."""

import csv
import io
from collections.abc import Sequence

from fastapi.responses import Response
from pydantic import BaseModel

from collector.rows import columns


def answer(
    rows: Sequence[BaseModel], model: type[BaseModel], fmt: str, extra: Sequence[str] = ()
) -> Response:
    """`rows` of `model` as CSV (header from the model's columns, then the `extra` ones
    each row carries) or as a JSON array."""
    if fmt == "csv":
        header = [*columns(model), *extra]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            dumped = row.model_dump(mode="json")
            writer.writerow(dumped[name] for name in header)
        return Response(out.getvalue(), media_type="text/csv")
    body = b"[" + b",".join(row.model_dump_json().encode() for row in rows) + b"]"
    return Response(body, media_type="application/json")
