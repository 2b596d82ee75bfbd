"""Benchmarks and the cost-model validation, run as modules from the repository root with intonly installed:
``python -m bench.<name>`` (bench/README.md). Modules import each other relatively (``from .layer_suite import
suite``); nothing here edits ``sys.path``."""
