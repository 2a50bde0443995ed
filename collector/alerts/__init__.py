"""Police plate alerts: the watchlist, matching plate reads against it, and the audit log
of every change and alert."""
