"""The Gradio app's widget-free helpers (``app.py`` beside this package holds the widgets).

Kept out of ``ganfit_core`` so that the library does not import pandas or app glue.
"""
