"""Long-range dependencies: the adding problem, gradient flow and gate heat maps."""
