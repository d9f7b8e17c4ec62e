"""Yellowstone (Geyser) plumbing: the capture file format, the replay server, the client."""
