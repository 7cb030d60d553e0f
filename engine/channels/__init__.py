"""Channels: how customers reach Flowdesk and how replies reach them (one shape for every vendor)."""
