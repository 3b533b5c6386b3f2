"""recarchive: call-recording archive and retention service."""

__version__ = "0.1.0"
