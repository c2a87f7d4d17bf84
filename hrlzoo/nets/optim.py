"""Adam and AdamW without `torch.optim`, bit for bit equal to torch's CPU implementation.

Why: the first call into any `torch.optim` optimizer imports `torch._dynamo` (its methods are
wrapped in `torch._disable_dynamo`), which costs about 1.5 s per process here, as much as
importing torch itself. A stage is a process, and at `smoke` scale most of a stage is
start-up, so the pipelines use these instead. The update is torch's single-tensor
implementation (`torch.optim.adam._single_tensor_adam`, what `torch.optim.Adam` runs on CPU
tensors by default), op for op, so results equal `torch.optim.Adam(params, lr, betas, eps,
weight_decay)` / `torch.optim.AdamW(...)` exactly (tests/test_optim.py). Not offered: amsgrad,
maximize, complex parameters, fused/foreach kernels, parameter groups.

    opt = Adam(model.parameters(), lr=3e-4)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
"""

from __future__ import annotations

from typing import Iterable


class Adam:
    """Adam (Kingma & Ba, 2015) with L2 weight decay added to the gradient, as torch.optim.Adam."""

    decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        import torch

        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(map(float, betas)), float(eps), float(weight_decay)
        self.steps = [0] * len(self.params)  # per parameter, as torch (a parameter without a gradient does not step)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    def step(self) -> None:
        import torch

        beta1, beta2 = self.betas
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        with torch.no_grad():
            for i, (p, m, v) in enumerate(zip(self.params, self.exp_avg, self.exp_avg_sq)):
                if p.grad is None:
                    continue
                self.steps[i] += 1
                step = float(self.steps[i])  # torch counts in a float32 tensor and reads a Python float
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
                step_size = lr / bias_correction1
                grad = p.grad
                if wd != 0:
                    if self.decoupled:
                        p.mul_(1 - lr * wd)
                    else:
                        grad = grad.add(p, alpha=wd)
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(m, denom, value=-step_size)

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "exp_avg": [t.clone() for t in self.exp_avg],
                "exp_avg_sq": [t.clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict) -> None:
        self.steps = list(state["steps"])
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"]):
            dst.copy_(src)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): weight decay applied to the parameters, as torch.optim.AdamW
    (whose default weight_decay is 0.01)."""

    decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
