"""A machine's figures: the speed of our training loop against the tutorial's, and one run
that measures a machine end to end (for the GPU machines lent now and then)."""

__all__ = ["figures", "speed"]
