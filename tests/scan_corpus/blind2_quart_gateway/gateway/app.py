import asyncio

import httpx
from quart import Quart, jsonify, request

from gateway import store, upstream
from gateway.cache import fx, meta_for
from gateway.upstream import RATES_URL, bounded_quote

app = Quart(__name__)


@app.route("/rates/<base>")
async def rates(base: str):
    async with httpx.AsyncClient(base_url=RATES_URL, timeout=5) as client:  # expect: SLP102
        resp = await client.get(f"/latest/{base}")
    return jsonify(resp.json())


@app.route("/fx/<base>")
async def fx_view(base: str):
    return jsonify(await fx(base))


@app.route("/quotes", methods=["POST"])
async def quotes():
    payload = await request.get_json()
    results = []
    for symbol in payload["symbols"]:
        results.append(await upstream.quote(symbol))  # expect: SLP301
    return jsonify(results)


@app.route("/quotes/batch", methods=["POST"])
async def quotes_batch():
    payload = await request.get_json()
    results = await asyncio.gather(*[upstream.quote(s) for s in payload["symbols"]])  # expect: SLP302
    return jsonify(results)


@app.route("/quotes/bounded", methods=["POST"])
async def quotes_bounded():
    payload = await request.get_json()
    results = await asyncio.gather(*[bounded_quote(s) for s in payload["symbols"]])  # ok: SLP302 coroutine holds a semaphore
    return jsonify(results)


@app.route("/pair")
async def pair():
    usd, eur = await asyncio.gather(upstream.quote("USD"), upstream.quote("EUR"))  # ok: SLP302 fixed arity
    return jsonify({"usd": usd, "eur": eur})


@app.route("/history/<symbol>")
async def history(symbol: str):
    rows = store.history(symbol)  # expect: SLP401
    return jsonify({"symbol": symbol, "meta": meta_for(symbol), "rows": rows})


@app.route("/record/<symbol>", methods=["POST"])
async def record(symbol: str):
    body = await request.get_json()
    await asyncio.to_thread(store.record, symbol, body["price"])  # ok: SLP401 passed to to_thread
    return "", 204


@app.route("/export")
async def export():
    loop = asyncio.get_running_loop()
    rows = await loop.run_in_executor(None, store.dump_all)  # ok: SLP401 run in executor
    return jsonify(rows)


@app.route("/instruments")
async def instruments():
    return jsonify(await upstream.all_instruments(max_pages=20))
