"""The pure core: the engine and what it is made of. No I/O; time is passed in.

Imports only itself, `acd.config` and `acd.errors` (checked by tests/test_architecture.py).
"""
