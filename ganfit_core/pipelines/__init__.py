"""Pipelines that combine the fitting engine with other packages (they sit above both).

- :mod:`ganfit_core.pipelines.uv_extract`: photos -> cleaned UV albedo maps (the texture priors'
  data set) and the ``texture_pca`` asset builder. ``ganfit_core.texture`` never imports the
  fitter; the extraction that needs a fit lives here.
"""
