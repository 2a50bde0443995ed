"""Exports for the environmental officer and the provincial authority.

`select_stations` picks the configured stations an export covers; the report itself is
`collector.compliance.report`; `table`, `workbook` and `html_report` lay it out, `tt10`
writes Circular 10/2021 station data files. The workbook and the HTML report need the
`export` extra, imported only when asked for.
"""

from collections.abc import Sequence
from enum import StrEnum

from collector.config import StationSettings


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    HTML = "html"
    TT10 = "tt10"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.HTML: "text/html; charset=utf-8",
}


def select_stations(
    stations: dict[str, StationSettings], kinds: Sequence[str], devices: Sequence[str]
) -> dict[str, StationSettings]:
    """The stations named, or of the kinds named, or all of them; anything named that is
    not configured is an error that lists what is."""
    if not stations:
        raise ValueError(
            "the collector config has no stations: an export needs each device's station kind"
        )
    unknown = sorted(set(devices) - stations.keys())
    if unknown:
        raise ValueError(
            f"not a configured station: {', '.join(unknown)} (known: {', '.join(sorted(stations))})"
        )
    known_kinds = {s.kind for s in stations.values()}
    missing = sorted(set(kinds) - known_kinds)
    if missing:
        configured = ", ".join(sorted(known_kinds))
        raise ValueError(f"no station of kind {', '.join(missing)} (configured: {configured})")
    if not kinds and not devices:
        return dict(stations)
    return {d: s for d, s in stations.items() if d in devices or s.kind in kinds}
