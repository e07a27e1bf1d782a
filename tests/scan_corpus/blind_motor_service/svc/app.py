from starlette.applications import Starlette
from starlette.routing import Route

from svc import handlers
from svc.db import client

routes = [
    Route("/cards", handlers.user_cards, methods=["POST"]),
    Route("/cards/fast", handlers.user_cards_fast, methods=["POST"]),
    Route("/events", handlers.record_events, methods=["POST"]),
    Route("/events/fast", handlers.record_events_fast, methods=["POST"]),
    Route("/orders/close-stale", handlers.close_stale_orders, methods=["POST"]),
    Route("/views", handlers.product_views),
    Route("/views/fast", handlers.product_views_fast),
    Route("/warm", handlers.warm_cache, methods=["POST"]),
    Route("/warm/pipelined", handlers.warm_cache_pipelined, methods=["POST"]),
    Route("/health", handlers.health),
    Route("/health/offloaded", handlers.health_offloaded),
]


async def shutdown() -> None:
    client.close()


app = Starlette(routes=routes, on_shutdown=[shutdown])
