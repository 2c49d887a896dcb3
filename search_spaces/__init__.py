"""Search spaces as data files (TOML); bench.spaces reads and validates them."""
