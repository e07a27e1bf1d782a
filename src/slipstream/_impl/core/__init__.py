"""core: what every other package stands on and nothing of slipstream beneath it.

Errors and outcomes, environment knobs, the clock, argument checks, error classification
(transient or not), canonical keys, the shared thread pool."""
