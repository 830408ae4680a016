"""Data shared by every family: sources, preprocessing, splits, batching."""
