"""Bundled demo models: definitions, their data, and the scripts that trained their shipped weights."""

DEMOS = ("digits", "vit", "minilm", "efficientnet-lite0")  # the names `intonly run/estimate --model NAME` accepts
