"""Figures (matplotlib) for studies and reports; everything renders off-screen."""

from hourglass.report.figures import error_histogram, image_grid, ranked_images

__all__ = ["error_histogram", "image_grid", "ranked_images"]
