"""Areas on the island's map, as police draw them: a polygon of (lat, lon) corners, and
the registered poles inside one. A plate search is narrowed to an area, and a unit of the
police covers one (dispatch)."""

from collections.abc import Iterable
from dataclasses import dataclass

from collector.fleet.registry import RegisteredDevice
from collector.i18n import services

_ = services.gettext

MIN_CORNERS = 3


class AreaError(ValueError):
    """An area that is not a polygon on the map; the message says what is wrong."""


@dataclass(frozen=True)
class Area:
    corners: tuple[tuple[float, float], ...]

    def holds(self, lat: float, lon: float) -> bool:
        """Whether the point is inside, by counting the edges a ray eastward crosses."""
        inside = False
        corners = self.corners
        for (lat_a, lon_a), (lat_b, lon_b) in zip(corners, corners[1:] + corners[:1], strict=True):
            if (lat_a > lat) != (lat_b > lat):
                crossing = lon_a + (lat - lat_a) * (lon_b - lon_a) / (lat_b - lat_a)
                if lon < crossing:
                    inside = not inside
        return inside


def area(corners: Iterable[tuple[float, float]]) -> Area:
    points = tuple((float(lat), float(lon)) for lat, lon in corners)
    if len(points) < MIN_CORNERS:
        raise AreaError(
            _("an area has at least {least} corners, not {count}").format(
                least=MIN_CORNERS, count=len(points)
            )
        )
    for lat, lon in points:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise AreaError(
                _("corner {corner}: not a latitude and longitude").format(corner=f"{lat},{lon}")
            )
    return Area(points)


def parse_area(text: str) -> Area:
    """`lat,lon;lat,lon;lat,lon...` as typed on a command line or in a query string."""
    corners = []
    for part in text.split(";"):
        try:
            lat, lon = (float(v) for v in part.split(","))
        except ValueError:
            raise AreaError(
                _("corner {corner}: write it as lat,lon").format(corner=repr(part.strip()))
            ) from None
        corners.append((lat, lon))
    return area(corners)


def devices_in(devices: Iterable[RegisteredDevice], where: Area) -> frozenset[str]:
    """The registered boxes with a location inside `where`."""
    return frozenset(
        d.device
        for d in devices
        if d.location is not None and where.holds(d.location.lat, d.location.lon)
    )
