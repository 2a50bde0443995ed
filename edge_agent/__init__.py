"""The agent that runs on each field box: read the world, keep it, send it."""

__version__ = "0.1.0"
