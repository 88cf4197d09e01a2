"""The one transformer-block loop every mmwinwin ViT runs, with one seam for token policies.

:func:`run_blocks` runs a :class:`~mmwinwin.layers.RoPEVisionTransformer`'s blocks over
prepared tokens (prefix tokens in front, RoPE coordinates already in the model's
convention) and collects the outputs of ``vit.out_indices``. What differs between models
-- how a block sees the tokens (full attention, attention partitions, clusters), what
happens to the tokens between blocks (Expedite's clustering), what an output is (the
final norm, Expedite's reconstruction) -- is a :class:`TokenPolicy`, the single patch
point (the ToMe idea: one seam instead of forked loops). Per block ``i``::

    policy.before_block(i, state)
    state.x = policy.block(i, state)
    if i in out_indices: outs.append(policy.output(i, state))
    policy.after_block(i, state)

Policies live with their concept: :class:`TokenPolicy` (plain, here),
``PartitionedAttentionPolicy`` (ViTDet, ``layers/vit/vitdet.py``), ``ExpeditePolicy`` and
``PartitionedExpeditePolicy`` (``layers/expedite/``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ['BlockLoopState', 'TokenPolicy', 'run_blocks']


@dataclass
class BlockLoopState:
    """What the loop carries from block to block; a policy may replace any field.

    Attributes:
        vit: the ViT whose blocks run (``run_block``, ``output_tokens``, ``num_layers``).
        x: ``(B, p + N, C)`` tokens, prefix first.
        pos: RoPE coordinates of the patch tokens, ``(N, 2)`` or ``(B, N, 2)``.
        attn_mask: optional attention mask passed to every block by the plain policy.
        extra: free room for a policy's own per-forward values.
    """
    vit: nn.Module
    x: torch.Tensor
    pos: torch.Tensor
    attn_mask: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TokenPolicy:
    """The plain policy: every block attends over all tokens; outputs are the patch
    tokens (after the final norm for the last block). Subclass and override any hook."""

    def before_block(self, index: int, state: BlockLoopState) -> None:
        """Called before block ``index`` runs (may change ``state``)."""

    def block(self, index: int, state: BlockLoopState) -> torch.Tensor:
        """Run block ``index`` on ``state`` and return its output tokens."""
        return state.vit.run_block(index, state.x, state.pos, state.attn_mask)

    def output(self, index: int, state: BlockLoopState) -> torch.Tensor:
        """The returned tensor of block ``index`` (only for indices in ``out_indices``)."""
        return state.vit.output_tokens(index, state.x)

    def after_block(self, index: int, state: BlockLoopState) -> None:
        """Called after block ``index`` and its output (may change ``state``)."""


def run_blocks(vit: nn.Module, x: torch.Tensor, pos: torch.Tensor,
               policy: TokenPolicy | None = None, attn_mask: torch.Tensor | None = None,
               out_indices: Sequence[int] | None = None) -> list[torch.Tensor]:
    """Run all ``vit.num_layers`` blocks on prepared tokens ``x`` at RoPE coordinates
    ``pos`` under ``policy`` (default: the plain :class:`TokenPolicy`).

    Returns ``policy.output(i, state)`` for each ``i`` in ``out_indices`` (default
    ``vit.out_indices``), in block order.
    """
    policy = TokenPolicy() if policy is None else policy
    if not isinstance(policy, TokenPolicy):
        raise TypeError(f'policy must be a TokenPolicy (mmwinwin.layers.vit.block_loop), got '
                        f'{type(policy).__name__}; subclass TokenPolicy and override its hooks.')
    wanted = set(vit.out_indices if out_indices is None else out_indices)
    bad = sorted(i for i in wanted if not (isinstance(i, int) and 0 <= i < vit.num_layers))
    if bad:
        raise IndexError(f'run_blocks out_indices {bad} are outside blocks 0..'
                         f'{vit.num_layers - 1}; give non-negative block indices.')
    state = BlockLoopState(vit=vit, x=x, pos=pos, attn_mask=attn_mask)
    outs = []
    for i in range(vit.num_layers):
        policy.before_block(i, state)
        state.x = policy.block(i, state)
        if i in wanted:
            outs.append(policy.output(i, state))
        policy.after_block(i, state)
    return outs
