"""slipstream's implementation, one package per concept; the public names live in ``slipstream``.

Layers, lowest first (``lint-imports`` enforces them; see docs/architecture.md)::

    core                         errors, outcomes, knobs, the clock, argument checks, keys
    observe                      histograms, the monitor, progress, the ASGI middleware
    flow | loop | clients        map/stream, rate, retry, breaker | offload, TaskSet, LoopWatch |
                                 the client registry, pool settings
    cache | db                   Cache, @cached, stores | DataLoader, BatchWriter, sinks
    pipeline                     Stage, Pipeline, checkpoints, sources, the Dask runner
    scan                         the static scanner (imports core only)
    cli                          the only place that joins scan with the rest
"""
