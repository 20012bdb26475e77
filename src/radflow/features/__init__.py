"""Feature families radflow computes itself (beside PyRadiomics'), as pure functions."""
