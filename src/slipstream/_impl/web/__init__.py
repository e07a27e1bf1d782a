"""web: slipstream inside an ASGI app (FastAPI, Starlette).

``Lifespan`` opens the app-wide primitives (``Registry``, ``TaskSet``, ``LoopWatch``) with the
app and closes them in order, ``RequestScope`` and ``request_loader`` give each request its own
``DataLoader``, and ``CacheControl`` sets ``Cache-Control`` per route. Plain ASGI throughout:
nothing here imports a web framework.
"""
