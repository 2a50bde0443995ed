"""What the tests, the benchmarks and the demo use and production never does: real
servers started on free loopback ports, local HTTP stand-ins, and synthetic plate scenes.

Installed from `support/` as its own distribution, so the production packages stay free
of it and of Pillow."""
