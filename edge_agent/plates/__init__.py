"""Licence plates on the camera pole: synthetic scenes, detection, reading and tracking
(the plate formats themselves are `iotwire.plates`, shared with the collector)."""
