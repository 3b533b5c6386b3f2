"""Object storage: where recording audio lives (filesystem, S3, in memory)."""
