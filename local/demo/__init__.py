"""Demo data for `crm up` and `crm demo`, loaded through the services' own APIs and inbound
topics."""
