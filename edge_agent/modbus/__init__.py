"""Modbus on the box: one bus per RS-485 line or TCP gateway, the register layouts of the
firmware profiles, the source that reads a unit, and the simulator that serves profiles."""
