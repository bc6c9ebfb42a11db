"""Long Range Arena benchmark: ``train.py`` (the CLI), ``data/`` (loaders and generators),
``configs/`` (one YAML per task), ``config.py``, ``models.py`` and ``objectives.py``."""
