"""A run on disk: its record (``metrics.json``), recipe, folder and lock, job folder names, checkpoint files, and
the summary printed at its end. Reads and writes files only: no Lightning, no models."""
