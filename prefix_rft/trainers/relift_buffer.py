"""ReLIFT's buffer of hard prompts: those whose whole rollout group scored 0, with their demonstrations.

Pure bookkeeping (no tensors, no trainer) so that selection and trigger can be tested directly, and
plain JSON state so that it travels with checkpoints.
"""

from __future__ import annotations

from typing import Any


def failed_groups(rewards: list[float], num_generations: int) -> list[int]:
    """Indices of the groups (consecutive runs of ``num_generations`` rewards) where no rollout scored
    above 0; a missing reward (NaN) counts as 0."""
    if len(rewards) % num_generations:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {num_generations}")
    failed = []
    for g in range(len(rewards) // num_generations):
        group = rewards[g * num_generations : (g + 1) * num_generations]
        if all(not (r > 0) for r in group):  # NaN > 0 is False: an unscored rollout is not a success
            failed.append(g)
    return failed


class SFTBuffer:
    """FIFO of ``{"prompt_ids", "demo_ids"}`` entries; an SFT step takes the newest ``size`` and empties it.

    ReLIFT trains on the hardest prompts seen most recently: once ``size`` of them have been collected
    they are used once and the buffer starts over (older overflow entries are dropped as stale).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"sft_buffer_size={size} must be >= 1")
        self.size = size
        self.entries: list[dict[str, list[int]]] = []
        self.num_added = 0
        self.num_sft_steps = 0

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entries: list[dict[str, list[int]]]) -> None:
        """Append entries (oldest first)."""
        self.entries.extend(entries)
        self.num_added += len(entries)

    def ready(self) -> bool:
        """True when an SFT step is due."""
        return len(self.entries) >= self.size

    def take(self) -> list[dict[str, list[int]]]:
        """The newest ``size`` entries (oldest first); empties the buffer and counts the SFT step."""
        if not self.ready():
            raise RuntimeError(f"buffer holds {len(self.entries)} of {self.size} entries")
        batch = self.entries[-self.size :]
        self.entries = []
        self.num_sft_steps += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "size": self.size,
            "entries": self.entries,
            "num_added": self.num_added,
            "num_sft_steps": self.num_sft_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the configured ``size`` wins if it changed)."""
        self.entries = [dict(e) for e in state["entries"]]
        self.num_added = int(state["num_added"])
        self.num_sft_steps = int(state["num_sft_steps"])
