"""wgfleet: orchestrate a fleet of no-logs WireGuard nodes."""

__version__ = "0.1.0"
