"""Bundled demo models: definitions, their data, and the scripts that trained their shipped weights."""
