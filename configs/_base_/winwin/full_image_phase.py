# The Win-Win recipe of every configs/winwin* config (docs/winwin.md, "The recipe: a full-image
# phase at the end of training"): windows for the first 5/6 of max_iters, whole images (flow:
# whole frame pairs) for the last 1/6, at full-resolution cost and memory there. A config takes
# it as model=dict(full_image_phase={{_base_.full_image_phase}}); full_image_phase=None is the
# paper's windows-only training (the models' own default).
full_image_phase = dict(begin_fraction=5 / 6)
