"""Racing: the configs the evidence picks, trained again on held-out seeds until each comparison
is decided. The one stage after the search that trains, and it trains through mnist_cnn."""

__all__ = ["confirm"]
