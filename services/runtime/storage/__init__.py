"""PostgreSQL for every service: the connection pool, the event store, and the WHERE
clauses of list queries."""
