"""Sans-I/O CTI protocol: framing, link layer and the Construct message catalogue."""
