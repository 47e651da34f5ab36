"""The TUI's screens: fleet, configurations, accounts, operations and help."""
