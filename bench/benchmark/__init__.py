"""The benchmark: the grid that measures a space once, compare, which replays searches against
it, reserved, the seeds no replay draws and the baseline scored on them, and regret, which scores
the searches."""

__all__ = ["compare", "grid", "regret", "reserved"]
