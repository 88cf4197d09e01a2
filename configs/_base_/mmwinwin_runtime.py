# What every mmwinwin config adds to its host's runtime, and all it needs under mmseg's and
# mmdet's own tools/train.py and tools/test.py (or `mim train` / `mim test`): the import that
# registers mmwinwin's modules, and the hooks its models rely on (./mmwinwin_hooks.py).
_base_ = ['./mmwinwin_hooks.py']
custom_imports = dict(imports=['mmwinwin'], allow_failed_imports=False)
