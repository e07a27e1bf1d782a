"""cli: the ``slipstream`` command; the one package that joins the scanner with the runtime."""
