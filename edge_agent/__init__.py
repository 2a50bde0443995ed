"""The agent that runs on each field box: read the world, keep it, send it."""

from importlib.metadata import version

__version__ = version("phuquoc-telemetry")
