# The Win-Win recipe of the segmentation and detection configs (configs/winwin/winwin-*upernet*,
# configs/vitdet/winwin-*; docs/winwin.md, "A longer phase"; docs/detection.md, "The recipe in
# the detection configs"): windows for the first 2/3 of max_iters, whole images for the last 1/3,
# at full-resolution cost and memory there, with the phase's own learning rate (each config
# states its param_scheduler: mmwinwin.engine.phase_restart_schedule of the host's schedule). A
# config takes it as model=dict(full_image_phase={{_base_.full_image_phase}}). Depth and flow
# keep the last 1/6 (full_image_phase.py), measured best there; the epoch-based ViT-B Mask R-CNN
# twin sets begin_fraction=17 / 25 (whole epochs).
full_image_phase = dict(begin_fraction=2 / 3)
