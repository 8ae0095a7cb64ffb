"""Sphinx configuration of the hourglass documentation.

The build is offline: no intersphinx inventories are fetched, and the gallery's
examples read their data through ``hourglass.datasets`` (``$HOURGLASS_DATA``,
the cache, or a one-time download).
"""

from __future__ import annotations

import os
import warnings

import hourglass

os.environ.setdefault("MPLBACKEND", "Agg")

# The examples train small models; they should not compete with each other for cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")

project = "hourglass"
author = "hourglass developers"
copyright = "hourglass developers"
version = release = hourglass.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.py"]
templates_path = ["_templates"]
html_static_path: list[str] = []

# API reference: members follow each module's __all__; numpydoc renders the docstrings.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections state the types
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Every public class documents each of its parameters (and nothing else): checked here
# at build time, and with the fitted attributes in tests/test_docstrings.py.
numpydoc_validation_checks = {"PR01", "PR02"}
numpydoc_validation_exclude = {
    # Only the estimators and load(): the helper modules' functions are documented in
    # prose, one sentence per argument where one is needed.
    r"^(?!hourglass\.(Autoencoder|AutoencoderOutlierDetector|AutoencoderClusterer|load)\b)",
    r"\.__init__$",  # documented in the class docstring
}

html_theme = "pydata_sphinx_theme"
html_title = f"hourglass {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
# Without it the theme starts a first visit with an empty colour mode and logs a
# console error ("Got invalid theme mode"), which tests/docs catches.
html_context = {"default_mode": "auto"}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
}


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out what the estimators inherit from scikit-learn (documented there)."""
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)


# The examples train with progress bars off; anything still printed as a warning by a
# dependency is not the documentation's concern.
warnings.filterwarnings("ignore", category=UserWarning, module="umap")
