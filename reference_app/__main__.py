"""`python -m reference_app` is the `fraudlab` CLI."""

from .cli import app

app(prog_name="fraudlab")
