"""clients: create expensive clients once (``Registry``) and size their pools (``PoolSettings``)."""
