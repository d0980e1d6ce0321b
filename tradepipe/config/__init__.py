"""Configuration: the settings (TRADEPIPE_* variables), the start-up checks, log redaction, the run-queue lanes,
and the one place where settings become the rule objects of the core (``rules.py``)."""
