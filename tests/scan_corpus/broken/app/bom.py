"""Valid: UTF-8 with a BOM."""


def hello() -> str:
    return "hello"
