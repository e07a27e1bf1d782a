"""loop: keep the event loop responsive.

Offload blocking work, own background tasks (``TaskSet``), and watch for stalls (``LoopWatch``).
"""
