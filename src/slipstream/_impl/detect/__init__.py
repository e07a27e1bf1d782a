"""Runtime detectors: watch the queries a block of code sends and find N+1 patterns."""
