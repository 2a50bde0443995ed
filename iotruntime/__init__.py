"""What the agent and the collector both need to run, beside the wire itself.

`iotwire` says what crosses MQTT; this package holds the rest the two processes share:
config files whose errors name file and key (`configfile`), the broker connection
(`connection`), the credentials and ACLs the broker checks (`broker_access`,
`certificates`), the registration bundle a technician carries from a box to the
operations center (`registration`), and systemd supervision (`systemd`).
"""
