"""Temporal runtime: conversation workflow, activities, worker and the embedded dev server."""
