"""A file with a syntax error."""


def handler(request:
    return request
