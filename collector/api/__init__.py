"""The HTTP API: module-level routers per concern, their response models, bearer-token
roles; `app` assembles them and serves them beside the ingest."""
