"""The police subsystem: plate reads and the alerts they raise, the watchlist and its
matching, alert deliveries (MQTT, webhooks, the event stream), retention and the audit log
of everything done with personal data."""
