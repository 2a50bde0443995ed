"""/releases/NAME: the release bundles on the center's shelf (collector/fleet/releases.py),
for the boxes to fetch.

Open, without a token: a box has no API user, and it needs none, since what it installs is
decided by the digest in the offer signed with the center's key, which a bundle served
here or anywhere else must match. The bundles hold this project's code and public wheels,
nothing secret. Only the shelf's own files are served (no listing, no path outside it).
"""

from fastapi.staticfiles import StaticFiles

from collector.config import CollectorConfig
from collector.fleet.releases import releases_folder

RELEASES_PATH = "/releases"


def release_files(settings: CollectorConfig) -> StaticFiles | None:
    """The shelf to mount at RELEASES_PATH, or None without a registry (no shelf)."""
    if settings.registry is None:
        return None
    return StaticFiles(directory=releases_folder(settings.registry.path), check_dir=False)
