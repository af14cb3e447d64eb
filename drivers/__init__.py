"""I/O adapters: serial/TCP/in-process PBX links, MQTT, anything that touches the OS."""
