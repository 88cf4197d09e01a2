"""Check the pretrained-family presets against timm, full size, random weights.

    python tools/analysis_tools/rope_family_timm_check.py

Builds timm's DINOv3 S/16, EVA-02 S/14, RoPE-ViT RoPE-Mixed S/16 and PE-Spatial S/16
(``timm.models.eva``) with random weights (1-D parameters randomised too), loads their state
dicts into mmwinwin's ``dinov3-vits16`` / ``eva02-vits14`` / ``naver-rope-mixed-vits16`` /
``pe-spatial-vits16`` presets and prints the largest difference of the last block's patch
tokens (normed) at the pre-training size and at another, non-square size (PE: the pre-training
size only, where timm and the official convention that the preset follows agree). Needs timm
(the tests extra: ``pip install -e .[tests]``); the package itself does not.
"""
import torch

from mmwinwin.layers import RoPEVisionTransformer, load_vit_state_dict

CASES = [('vit_small_patch16_dinov3_qkvb', 'dinov3-vits16', [(224, 224), (160, 320)], 16),
         ('eva02_small_patch14_224', 'eva02-vits14', [(224, 224), (280, 308)], 14),
         ('vit_small_patch16_rope_mixed_224', 'naver-rope-mixed-vits16',
          [(224, 224), (160, 320)], 16),
         ('vit_pe_spatial_small_patch16_512', 'pe-spatial-vits16', [(512, 512)], 16)]


def main() -> None:
    try:
        import timm
    except ImportError:
        raise SystemExit('This check compares against timm: pip install -e .[tests] '
                         '(timm==1.0.31 with torch==2.13.0 on the same command).') from None
    torch.manual_seed(0)
    for timm_name, arch, sizes, patch in CASES:
        ref = timm.create_model(timm_name, pretrained=False, num_classes=0,
                                dynamic_img_size=True).eval()
        with torch.no_grad():
            for p in ref.parameters():
                if p.dim() < 2 or p.shape[0] == 1:
                    p.normal_(0.0, 0.3)
        model = RoPEVisionTransformer(arch=arch).eval()
        load_vit_state_dict(model, ref.state_dict())
        for hw in sizes:
            x = torch.randn(1, 3, *hw)
            with torch.no_grad():
                want = ref.fc_norm(ref.forward_features(x))  # identity but for EVA-02
                want = want[:, ref.num_prefix_tokens:].transpose(1, 2).reshape(
                    1, -1, hw[0] // patch, hw[1] // patch)
                got = model(x)[-1]
            print(f'{arch} vs timm {timm_name} at {hw[0]}x{hw[1]}: max |diff| '
                  f'{(got - want).abs().max():.2e} (max |value| {want.abs().max():.2f})')


if __name__ == '__main__':
    main()
