# The hooks every mmwinwin config declares (through ./mmwinwin_runtime.py, or beside its own
# custom_imports where a host base already sets custom_imports). Each leaves models it does not
# concern alone.
custom_hooks = [
    # weights-only checkpoint loading (mmwinwin's allow-list) for the run's load_from / resume
    # and Pretrained inits; the run's Runner checkpoints load under torch >= 2.6 with it
    dict(type='SafeCheckpointLoadingHook'),
    # every RNG state in the checkpoints, so a resumed run continues bit-identically
    dict(type='RNGStateHook'),
    # a checked segmentation preprocessor learns the model's class count (a bad label names its file)
    dict(type='LabelRangeHook'),
    # a Win-Win model with full_image_phase learns the iteration (the recipe's whole-image phase)
    dict(type='FullImagePhaseHook'),
    # checkpoints and last_checkpoint written atomically (temporary file, fsync, rename), the
    # new checkpoint saved before max_keep_ckpts deletes an old one (docs/long_runs.md)
    dict(type='AtomicCheckpointHook'),
    # SIGTERM: finish the iteration, save a checkpoint, exit 0; --resume continues exactly
    dict(type='PreemptionHook'),
]
