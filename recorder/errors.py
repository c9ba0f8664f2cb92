"""Every exception the recorder raises on purpose.

    RecorderError                 base: a condition we expected and can describe in one line
    ├── MalformedPacket           (also ValueError) input the edge counts and drops
    │   ├── RtpError              RTP header (RFC 3550, RFC 8285)
    │   └── DepacketizeError      codec payload or bitstream inside the RTP payload
    ├── SdpError                  session description that names no usable stream
    ├── CaptureError              file that is not a readable pcap / pcapng capture
    ├── UnsupportedError          codec, container or combination we do not record
    └── NoMediaError              input held no decodable media for the requested output

Malformed packets never stop a recording: whoever parses them catches `MalformedPacket`,
counts it and moves on. Everything else ends the operation with its one-line message.
"""


class RecorderError(Exception):
    """Base class: an expected failure with a one-line, user-facing message."""


class MalformedPacket(RecorderError, ValueError):
    """A packet or payload that cannot be used; counted and dropped by the caller."""


class RtpError(MalformedPacket):
    """The RTP fixed header, CSRC list, header extension or padding is invalid."""


class DepacketizeError(MalformedPacket):
    """A codec payload (descriptor, TOC, frame header) is invalid."""


class SdpError(RecorderError):
    """The session description cannot be used to map packets to codecs."""


class CaptureError(RecorderError):
    """The capture file cannot be read as pcap or pcapng."""


class UnsupportedError(RecorderError):
    """A codec, container or link type this recorder does not handle."""


class NoMediaError(RecorderError):
    """Nothing decodable was found for the requested output."""
