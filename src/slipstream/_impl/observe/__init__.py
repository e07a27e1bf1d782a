"""observe: measuring what the fixes buy; histograms, the monitor, progress, ASGI timing."""
