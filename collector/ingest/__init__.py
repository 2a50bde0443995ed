"""From the broker to the store: the MQTT session, the committer that validates and
commits a batch (in this process or in a commit process of its own), and the spool that
holds batches while the store is down."""
