"""The operations center's side: subscribe, validate, store, and answer."""

from importlib.metadata import version

__version__ = version("phuquoc-telemetry")
