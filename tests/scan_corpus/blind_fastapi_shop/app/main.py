from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.db import engine
from app.routers import catalog, orders


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(orders.router)
app.include_router(catalog.router)
