"""HTTP for every service: the app and its middleware, command helpers, bearer tokens and
permissions, the audit log, cursor paging and CSV exports."""
