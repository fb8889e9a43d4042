"""Post management service: schedules and publishes posts on X exactly once."""
