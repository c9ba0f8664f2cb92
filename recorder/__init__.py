"""rtp-recorder: RTP from a WebRTC SFU in, browser-playable WebM and fragmented MP4 out."""

__version__ = "0.1.0"
