"""CI: events -> environment and services, change detection."""
