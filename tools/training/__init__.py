"""LoRA/QLoRA fine-tuning: config, data, trainer, registry. Heavy imports stay inside functions."""

__all__: list[str] = []
