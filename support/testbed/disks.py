"""A small filesystem of its own, as on a box's SD card partition: a real tmpfs mount, so
a test fills a disk the way a box does, with ENOSPC from the kernel. Mounting takes root,
as the tests that start the broker as its own user do."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_filesystem(mount: Path, size_mb: int = 5) -> Iterator[Path]:
    """`mount` (made if missing) holding a `size_mb` filesystem until the block ends."""
    mount.mkdir(exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
