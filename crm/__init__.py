"""The `crm` command: operations on a running CRM (topics, backup and restore, rebuilds,
dead letters), and, in a checkout, the development commands of `local/` and `bench/`."""
