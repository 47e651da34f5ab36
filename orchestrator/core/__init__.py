"""The pure core: plain functions over plain data. No I/O, no adapters, no UI libraries."""
