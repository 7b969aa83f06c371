"""Out-of-tree detectors (gradient-free and trainable) and a strategy for cl-bench."""
