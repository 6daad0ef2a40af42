"""What only a developer's machine needs: the embedded PostgreSQL and broker, the service
launcher, `crm up`, local tokens, demo data and generated histories. Not in the image."""
