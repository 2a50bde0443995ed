"""Alarms for operations staff and the environmental officer: a box offline or silent, its
stream losing messages, a reading over a limit in force or beyond a set bound.

Rules come from the config's `alarms` section (collector/config.py). `collector run`
evaluates them every few seconds on what the store newly holds (`evaluation.py`) and on
the outbox drops the boxes' health reports, read off the broker (`health.py`), keeps
each alarm's lifecycle in a SQLite file of its own (`book.py`), and delivers each change
on MQTT and to signed webhooks (`delivery.py`). Alarms carry device names, values and
limits, never plates: this package does not import the police subsystem.
"""
