"""The SQL the analytics views run on the fold's tables, one module per view module:
segments and their members, profiles and what the customer 360 shows, satisfaction,
churn warnings, overviews, and the outbox the live feed follows. Each function answers
plain rows (dicts), JSON columns decoded (`records`); the views shape them."""
