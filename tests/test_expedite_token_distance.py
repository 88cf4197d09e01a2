"""mmwinwin.experiments.expedite_token_distance: distances checked against the model's own forward."""
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'vitdet', 'experiments',
               'mask-rcnn_rope-vit-tiny-win4_600i_coco-synth-128x128.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    pytest.importorskip('mmdet')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    import mmwinwin  # noqa: F401
    from mmwinwin.datasets.synthetic import generate_coco
    work = tmp_path_factory.mktemp('tokdist')
    root = str(work / 'coco') + '/'
    generate_coco(root, num_train=1, num_val=2, img_size=(128, 128), seed=0)
    cfg = Config.fromfile(CFG)
    cfg.test_dataloader.dataset.data_root = root
    cfg_path = str(work / 'cfg.py')
    cfg.dump(cfg_path)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    ckpt = str(work / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return cfg, cfg_path, ckpt, model


def test_distances_match_forward(setup):
    from mmwinwin.experiments.expedite_token_distance import token_distances
    from mmengine.runner import Runner
    cfg, cfg_path, ckpt, model = setup
    d = token_distances(cfg_path, ckpt, grid=1)
    assert sorted(d) == [1, 2, 3]
    # independent: tokens after block 2 (index 1, a global block) from the plain forward
    seen = []
    hook = model.backbone.blocks[1].register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        for batch in Runner.build_dataloader(cfg.test_dataloader):
            model.backbone(model.data_preprocessor(batch, False)['inputs'])
    hook.remove()
    ref = []
    for x in seen:  # (1, 64, C) = 8x8 grid, 2x2 windows of 4x4 tokens
        g = x.view(2, 4, 2, 4, -1).permute(0, 2, 1, 3, 4).reshape(4, 16, -1)
        ref.append(((g - g.mean(1, keepdim=True)) ** 2).sum(-1).flatten())
    ref = torch.cat(ref)
    torch.testing.assert_close(d[2].sort().values, ref.sort().values, rtol=1e-4, atol=1e-4)
    # one centre per token: every token's nearest centre is itself
    d4 = token_distances(cfg_path, ckpt, grid=4, max_images=1)
    assert d4[1].view(-1, 16).min(-1).values.abs().max() < 1e-3


def test_bad_grid(setup):
    from mmwinwin.experiments.expedite_token_distance import token_distances
    _, cfg_path, ckpt, _ = setup
    with pytest.raises(ValueError, match='--grid'):
        token_distances(cfg_path, ckpt, grid=5)
