"""Tiny reasoning language models, shared by HBPO and Cog-Rethinker.

- `hrlzoo.lm.tasks`: arithmetic problems with difficulty levels, solutions in the standard /
  verbose / direct styles, Cog-Rethinker's decomposition and reflection templates, the exact
  verifier and the 0/1 reward;
- `hrlzoo.lm.tokenizer`: the character tokenizer with special and budget tokens;
- `hrlzoo.lm.sampler`: batched KV-cache sampling with per-token log-probs, teacher-forced
  log-probs, batched text completion for evaluation;
- `hrlzoo.lm.sft`: completion-only SFT with Lightning;
- the model is `hrlzoo.nets.tinygpt`, the RL trainer `hrlzoo.algos.grpo` (GRPO and DAPO).

Importing any of these imports no Lightning (only `sft.train_sft` does, when called).
"""
