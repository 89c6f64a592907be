"""The fit's optimiser: a minimal Adam (Kingma & Ba 2015) and the parameter groups of each stage.

Why not ``torch.optim.Adam``: in torch 2.x its first ``step()`` imports ``torch._dynamo``
(measured 1.5-3.5 s on this 2-core CPU), a large part of a 30-second fit. The update here is the
textbook one, identical to ``torch.optim.Adam`` with default options (no weight decay, no amsgrad),
and deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["Adam", "STAGE_GROUPS", "stage_optimizer"]

#: stage: (groups at full learning rate, groups at ``refine_lr_scale``); group names as in
#: ``ganfit_core.fitting.params.PARAMETER_GROUPS``, learning rates ``FitConfig.lr_<group>``.
STAGE_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rigid": (("rotation", "translation", "depth", "focal"), ()),
    "shape": (("identity", "expression"), ("rotation", "translation", "depth", "focal")),
    "full": (("texture", "light"), ("identity", "expression", "rotation", "translation", "depth", "focal")),
    "detail": (("detail",), ("light",)),
}


class Adam:
    """Adam over parameter groups ``[{"params": [...], "lr": float}, ...]``.

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Adam([{"params": [p], "lr": 0.1}])
        >>> p.grad = torch.tensor([2.0]); opt.step()
        >>> round(float(p.detach()), 4)
        0.9
    """

    def __init__(self, groups: Iterable[dict], *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.groups = [{"params": list(g["params"]), "lr": float(g["lr"])} for g in groups]
        self.betas, self.eps = betas, eps
        self.steps = 0
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop every parameter's gradient."""
        for group in self.groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        self.steps += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1**self.steps, 1.0 - b2**self.steps
        for group in self.groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                m, v = self.state.setdefault(id(p), (torch.zeros_like(p), torch.zeros_like(p)))
                m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
                denom = (v / c2).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-group["lr"] / c1)


def stage_optimizer(stage: str, params: object, config: object, *, lr_scale: float = 1.0) -> Adam:
    """Adam over ``stage``'s parameter groups of ``params`` (FaceParameters) at ``config``'s rates
    (FitConfig) times ``lr_scale``; groups with a zero learning rate are left out."""
    full, refined = STAGE_GROUPS[stage]
    if stage == "detail" and config.detail_init_from_photo > 0:
        # The detail layer starts as the photo divided by the current light: moving the light would
        # undo that (Adam's first steps move every coefficient by its full rate).
        refined = tuple(name for name in refined if name != "light")
    groups = []
    for name in full + refined:
        lr = lr_scale * getattr(config, f"lr_{name}") * (config.refine_lr_scale if name in refined else 1.0)
        if lr > 0:
            groups.append({"params": params.group(name), "lr": lr})
    return Adam(groups)
