"""rtp-recorder's benchmark (see bench/README.md); never imported by the tests."""
