"""Every config resolves to the same ``model`` as it did before the host-native change.

``tests/data/config_models.json`` holds each config's resolved ``model`` dict as it was on
main before configs gained their hooks and the window transform its explicit ``patch_size``
(written then by resolving every config with mmengine's ``Config.fromfile``), with the
reviewed changes since: the Win-Win experiment config's loss (``IgnoreAwareCrossEntropyLoss``,
the same values without ignored pixels), the two configs of the Expedite comparison
(``configs/expedite*/experiments/*6l-64d-p8*``), and the segmentation Win-Win configs' longer
whole-image phase (``begin_fraction=2 / 3``), and the detection Win-Win configs' phase (the same,
``17 / 25`` for the epoch-based Mask R-CNN twin; its whole-image steps with the full-resolution
twin's ``train_cfg``; the panoptic ones on half of each batch, ``batch_fraction=0.5``). Layout and runtime changes must leave every
model exactly as it was.
"""
import glob
import json
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SNAPSHOT = osp.join(REPO, 'tests', 'data', 'config_models.json')


@pytest.fixture(scope='module')
def resolved():
    from mmengine.config import Config  # host base look-ups are cached (tests/conftest.py)
    out = {}
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)):
        rel = osp.relpath(path, REPO)
        if '/_base_/' in rel:
            continue
        cfg = Config.fromfile(path, import_custom_modules=False)
        if 'model' in cfg:
            out[rel] = json.loads(json.dumps(cfg.model.to_dict(), default=repr, sort_keys=True))
    return out


def test_every_config_resolves_to_the_same_model(resolved):
    with open(SNAPSHOT) as f:
        before = json.load(f)
    removed = sorted(set(before) - set(resolved))
    assert not removed, f'configs gone (moved or deleted) since the snapshot: {removed}'
    changed = [p for p in before if resolved[p] != before[p]]
    assert not changed, f'configs whose resolved model changed: {changed}'
    added = sorted(set(resolved) - set(before))
    assert not added, (f'new configs {added}: add their model dicts to {SNAPSHOT} once '
                       'reviewed (this test guards the configs that existed before).')
