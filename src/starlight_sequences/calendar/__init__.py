"""Business-day calendar, business hours, DST handling and staggering (pure)."""
