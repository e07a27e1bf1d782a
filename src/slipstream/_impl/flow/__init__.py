"""flow: calling many things at once without falling over.

``map``/``stream`` run a function over many items through limiter, breaker, call and retry;
``rate``, ``redis_rate``, ``retry`` and ``breaker`` are those four pieces on their own."""
