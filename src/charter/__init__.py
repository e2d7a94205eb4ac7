"""Charter: run machine-learning models in regulated finance with the evidence to show for it."""

__version__ = "0.1.0"
