"""The runtime: the controller's asyncio loop, the PBX driver seam (`pbx`, `bridge`), the
record store seam (`store` and its SQLite and PostgreSQL backends), MQTT topics, the clock.
"""
