"""Use cases shared by the CLI, the TUI and Python pipelines."""
