"""`wgfleet tui`: the operator's terminal UI over the same service functions as the CLI."""
