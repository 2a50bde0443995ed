"""Licence plates on the camera pole: formats, synthetic scenes, detection and reading."""
