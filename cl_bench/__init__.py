"""cl-bench: a continual-learning benchmark suite for unsupervised industrial anomaly detection."""

import warnings

__version__ = "0.1.0"

# Avalanche imports qpsolvers (for GEM, which cl-bench does not use); qpsolvers warns on import
# that no QP solver is installed, which every command (``--help`` included) would print.
# Silenced by its message and module only, so any other warning still shows.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning,
                        module=r"qpsolvers(\.|$)")
