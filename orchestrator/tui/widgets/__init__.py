"""Widgets of the operator's terminal UI: presentation only, no fleet rules."""
