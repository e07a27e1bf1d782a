"""cache: ``Cache`` and ``@cached`` with single flight, over memory, SQLite or Redis stores."""
