"""WSGI entry point: `python -m waitress wsgi:app`, `flask --app wsgi ...`."""

from videoflix import create_app

app = create_app()
