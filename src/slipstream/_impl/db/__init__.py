"""db: fewer round trips.

``DataLoader`` batches reads, ``BatchWriter`` batches writes into sinks, and maintenance
chunks long deletes so the database (and the event loop) never stalls on one statement.
"""
