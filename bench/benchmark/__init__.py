"""The benchmark: the grid that measures a space once, and compare, which replays searches
against it and scores them."""

__all__ = ["compare", "grid"]
