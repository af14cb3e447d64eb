"""Protocol errors, split by who broke the rules (as h11 does)."""


class ProtocolError(Exception):
    """Base class of every error raised by the `protocols` package."""


class LocalProtocolError(ProtocolError):
    """Our side tried something the protocol does not allow (a bug in the caller)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class EncodeError(LocalProtocolError):
    """A message cannot be encoded: a field is out of range or of the wrong type."""


class DecodeError(RemoteProtocolError):
    """A payload is not a valid message: unknown opcode, truncated, extended or out of range."""
