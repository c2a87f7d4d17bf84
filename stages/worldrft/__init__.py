"""WorldRFT (Yang et al., arXiv 2512.19133): latent world model, hierarchical planning and
GRPO fine-tuning for driving, on our batched driving simulator (hrlzoo.envs.driving)."""
