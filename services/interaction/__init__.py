"""The interaction service: contacts, tickets and complaints, satisfaction, contact plans."""
