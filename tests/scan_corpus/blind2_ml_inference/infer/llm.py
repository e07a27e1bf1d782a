from openai import AsyncOpenAI, OpenAI

_async_client: AsyncOpenAI | None = None


def shared_async() -> AsyncOpenAI:
    global _async_client
    if _async_client is None:
        _async_client = AsyncOpenAI(max_retries=2)  # ok: SLP102 memoised global
    return _async_client


def summarize(text: str) -> str:
    client = OpenAI()
    resp = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Summarise in one sentence."}, {"role": "user", "content": text}],
    )
    return resp.choices[0].message.content
