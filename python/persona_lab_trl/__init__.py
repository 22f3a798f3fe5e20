"""persona-lab's trl training backend: one job (job.json) trained with TRL + PEFT under accelerate."""
