"""dask: run a pipeline stage on a Dask cluster, one long-lived event loop per worker."""
