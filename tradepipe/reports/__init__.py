"""Renderings of the report document (``tradepipe.core.report``): JSON, HTML with charts, plain text, email."""
