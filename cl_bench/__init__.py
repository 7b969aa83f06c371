"""cl-bench: a continual-learning benchmark suite for unsupervised industrial anomaly detection."""

__version__ = "0.1.0"
