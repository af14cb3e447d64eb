"""acd-controller: automatic call distributor and PBX controller over a serial CTI link."""

__version__ = "0.1.0"
