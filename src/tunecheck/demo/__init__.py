"""The built-in demo: a generated task and its LoRA fine-tuning recipe."""
