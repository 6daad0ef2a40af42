"""`crm soak` and the fault-injection tests: a steady mixed load on the whole CRM while its
processes are killed, PostgreSQL is paused and its connections dropped, the broker is
killed and a second replica comes and goes; then what was accepted is looked for in the
views, every projection is compared with a rebuild and the analytic profiles with an
independent computation.

- `cluster`: the CRM under test, on embedded servers of its own or a running `crm up`;
- `load`: the clients (HTTP commands, inbound purchases on Kafka and over HTTP) and what
  each was answered;
- `faults`: the fault injectors and the time each fault took to recover from;
- `checks`: the comparisons afterwards;
- `run`: a soak from start to table (`soak()`), which `crm soak` and `tests/faults/` call.

Development tooling: the production image leaves the `bench` package out.
"""
