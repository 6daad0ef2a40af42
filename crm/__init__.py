"""The `crm` command: run the whole CRM locally (`crm up`) and load demo data (`crm demo`)."""
