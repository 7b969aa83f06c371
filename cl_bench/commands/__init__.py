"""Sub-commands of the ``cl-bench`` command line, one module each."""
