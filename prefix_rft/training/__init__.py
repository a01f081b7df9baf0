"""What a training run does around its trainers: the run folder (resume, overwrite guard) and its log."""
