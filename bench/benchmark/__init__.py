"""The benchmark: the grid that measures a space once, compare, which replays searches against
it, and regret, which scores them."""

__all__ = ["compare", "grid", "regret"]
