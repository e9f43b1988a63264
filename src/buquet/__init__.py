"""buquet: workflows and a task queue that need nothing but a bucket."""

__version__ = "0.1.0"
