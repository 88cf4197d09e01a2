"""IgnoreAwareCrossEntropyLoss: mmseg's class-weighted cross-entropy on labels that hold the
ignore index, held against PyTorch's own weighted mean and against mmseg's class where mmseg's
works (no ignored pixel)."""
import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss

from mmwinwin.models.losses import IgnoreAwareCrossEntropyLoss

W = [0.25, 1.0, 1.0, 2.0, 0.5]


def _batch(seed, ignore_share):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, 8, 12, generator=g)
    label = torch.randint(0, 5, (2, 8, 12), generator=g)
    label[torch.rand(2, 8, 12, generator=g) < ignore_share] = 255
    return logits, label


def test_weighted_mean_with_ignored_pixels_is_pytorchs():
    loss = IgnoreAwareCrossEntropyLoss(class_weight=W, avg_non_ignore=True, loss_weight=1.0)
    for seed in range(3):
        logits, label = _batch(seed, 0.6)
        want = F.cross_entropy(logits, label, weight=torch.tensor(W), ignore_index=255)
        got = loss(logits, label, ignore_index=255)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_equal_to_mmseg_without_ignored_pixels():
    for avg_non_ignore in (True, False):
        ours = IgnoreAwareCrossEntropyLoss(class_weight=W, avg_non_ignore=avg_non_ignore)
        theirs = CrossEntropyLoss(class_weight=W, avg_non_ignore=avg_non_ignore)
        logits, label = _batch(1, 0.0)
        torch.testing.assert_close(ours(logits, label, ignore_index=255),
                                   theirs(logits, label, ignore_index=255))


def test_all_ignored_is_zero_not_nan():
    loss = IgnoreAwareCrossEntropyLoss(class_weight=W, avg_non_ignore=True)
    logits, label = _batch(2, 1.1)
    assert float(loss(logits, label, ignore_index=255)) == 0.0


def test_registered_for_configs():
    import mmwinwin.models  # noqa: F401
    from mmseg.registry import MODELS
    loss = MODELS.build(dict(type='IgnoreAwareCrossEntropyLoss', class_weight=W,
                             avg_non_ignore=True))
    assert isinstance(loss, IgnoreAwareCrossEntropyLoss)
