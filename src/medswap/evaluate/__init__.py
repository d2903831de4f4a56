"""Evaluation of de-identified videos: what is kept (keypoints, measures) and what is hidden.

The modules here compute and return results. Running the product on videos and writing
tables, plots and reports is :mod:`medswap.studies` and :mod:`medswap.report`, above this
package: ``evaluate`` imports neither (issue 21).
"""
