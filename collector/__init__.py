"""The operations center's side: subscribe, validate, store, and answer."""

__version__ = "0.1.0"
