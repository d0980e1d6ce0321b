"""The ``tradepipe`` command line: one module per command group (``main.py`` registers them)."""
