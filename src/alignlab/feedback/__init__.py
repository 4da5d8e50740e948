"""Feedback: judges, constitutions, AI labellers, and agreement statistics between labellers.

`alignlab.feedback.agreement` holds the agreement statistics (pairwise agreement, Cohen's and
Fleiss' kappa, Krippendorff's alpha, position-bias and tie rates) as pure functions that work the
same for human labellers (the labelling app) and AI labellers.
"""
