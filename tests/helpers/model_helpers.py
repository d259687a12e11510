"""What every model test asks of a segmentation network, written once."""

from __future__ import annotations

import torch


def losses_on_a_fixed_batch(model: torch.nn.Module, batch: int, steps: int) -> list[float]:
    """Cross-entropy after each of ``steps`` Adam steps on one fixed batch of 64x64 noise whose
    masks have a learnable layout (three quadrants of other classes): a network that can learn
    brings it down."""
    torch.manual_seed(0)
    model.train()
    images = torch.randn(batch, 3, 64, 64)
    masks = torch.zeros(batch, 64, 64, dtype=torch.long)
    masks[:, :32, 32:], masks[:, 32:, :32], masks[:, 32:, 32:] = 1, 2, 7
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), masks)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
