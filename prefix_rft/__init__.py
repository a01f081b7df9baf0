"""prefix-rft: Prefix-RFT and its baselines on Hugging Face TRL."""

from prefix_rft.cpu_threads import apply_defaults as _apply_cpu_thread_defaults

# Before any submodule loads torch (and with it OpenMP, which reads its environment once).
_apply_cpu_thread_defaults()

__version__ = "0.1.0"
