"""The sales service: opportunities, pipeline, quotes, contracts, payments, purchases."""
