"""An out-of-tree detector and strategy for cl-bench."""
