import re

_WS = re.compile(r"\s+")

RENDERERS = {}


def renderer(name):
    def register(fn):
        RENDERERS[name] = fn  # ok: SLP501 a registry filled at import time
        return fn

    return register


@renderer("plain")
def render_plain(body: str) -> str:
    return _WS.sub(" ", body).strip()


@renderer("excerpt")
def render_excerpt(body: str) -> str:
    return render_plain(body)[:280]


def render(kind: str, body: str) -> str:
    return RENDERERS.get(kind, render_plain)(body)


def slugify_titles(titles: list[str]) -> list[str]:
    slugs = []
    for title in titles:
        non_alnum = re.compile(r"[^a-z0-9]+")  # ok: SLP103 re caches compiled patterns
        slugs.append(non_alnum.sub("-", title.lower()).strip("-"))
    return slugs


def highlight(body: str, words: list[str]) -> str:
    for word in words:
        body = re.sub(rf"\b({re.escape(word)})\b", r"<mark>\1</mark>", body)  # ok: SLP103 pattern depends on the loop item
    return body
