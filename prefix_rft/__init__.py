"""prefix-rft: Prefix-RFT and its baselines on Hugging Face TRL."""

__version__ = "0.1.0"
