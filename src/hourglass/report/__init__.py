"""Figures (matplotlib) for studies and reports; everything renders off-screen."""

from hourglass.report.figures import code_map, error_histogram, image_grid, ranked_images

__all__ = ["code_map", "error_histogram", "image_grid", "ranked_images"]
