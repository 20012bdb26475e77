"""Stage ``reliability``: feature robustness to perturbations, negative controls and test–retest."""
