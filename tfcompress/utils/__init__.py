"""Small helpers shared by every technique: atomic file output and argument checks."""
