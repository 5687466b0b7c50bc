"""Problem families: instance types, evaluators and file formats."""
