# Full-resolution baseline for ADE20K (the standard 512x512-crop recipe), kept beside the
# Win-Win config; identical to ../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py.
_base_ = ['../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py']
