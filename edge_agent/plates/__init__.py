"""Licence plates on the camera pole: detection, reading and tracking (the plate formats
themselves are `iotwire.plate_formats`, shared with the collector)."""
