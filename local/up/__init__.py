"""`crm up`: run the whole CRM on this machine, no Docker needed.

Starts an embedded PostgreSQL (data kept in `DIR/postgres` between runs) and an embedded
Kafka-protocol broker (in memory), creates the `crm` database and every topic, runs each
service that exists as `python -m services.<name>`, waits until they are ready, loads demo
customers into an empty directory, prints where everything is and a bearer token per role
(signed with the secret kept in `DIR/auth-secret`, see `local.tokens`), and then supervises.

Ctrl-C, SIGTERM or SIGHUP stop everything in order: services (SIGTERM, SIGKILL after
10 s), then the broker, then PostgreSQL; the exit status is 0. A service that dies on its
own (killed, or stopped by a failed background task) is started again after a pause that
doubles with each quick failure (1 s up to 30 s; back to 1 s once it has run a minute),
with a line saying so; PostgreSQL and the broker keep running. Only when PostgreSQL or
the broker itself dies does everything stop, with status 1. The children run in their
own process groups, so a Ctrl-C reaches only this supervisor and the order holds; if the
supervisor itself is killed, the kernel kills them (see `local.embedded.processes`).

The modules: `command` (the subcommand), `supervisor` (start, supervise, stop),
`layout` (host, ports, the services there are), `output` (the services' output),
`demo` (demo data for an empty directory), `summary` (what is where, printed once up).
"""
