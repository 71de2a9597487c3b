"""Labeling assist (ModelArts' intelligent tasks) as jobs of kind ``label`` on the served model:
pre-labeling, hard examples, auto-grouping, and confirming proposals into the dataset."""
