"""`launch`: one YAML file to a fine-tuning run on a Ray cluster (client side, no torch)."""

__version__ = "0.1.0"
