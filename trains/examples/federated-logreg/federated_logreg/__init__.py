"""One station's step of a federated logistic regression for 2-year survival, as a PHT train."""
