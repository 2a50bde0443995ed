"""The boxes in the field as the operations center knows them: the device registry, the
broker configuration made from it, and commands sent to a box."""
