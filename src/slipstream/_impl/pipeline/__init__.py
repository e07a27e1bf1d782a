"""pipeline: ``Stage`` streams from a source to a sink.

Checkpointed, so a run can pause, crash and resume without losing or duplicating an item.
"""
