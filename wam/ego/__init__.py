"""Human egocentric video: the canonical hand track (hands.py) and importers of the datasets that hold it (EgoDex,
DexYCB), registered with `wam data convert` / `wam data import-ego`; retargeting onto robot hands comes here next."""
