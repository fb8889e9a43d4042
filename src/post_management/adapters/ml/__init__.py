"""Model fitting with scikit-learn, behind ports/engagement_model.py."""
