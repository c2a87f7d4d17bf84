"""Tiny reasoning language models: verifiable tasks, a character tokenizer, a batched KV-cache
sampler and SFT (HBPO and Cog-Rethinker). Importing this package imports no Lightning."""
