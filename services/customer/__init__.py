"""Customer service: customers, contact persons, classifications, tags and consent."""
