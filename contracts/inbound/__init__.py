"""The documents other systems publish on the CRM's inbound topics (`crm.inbound.*`).

Plain JSON documents, not the CRM's event envelope: `purchases` (shops, ERP, billing)
and `interactions` (call centre, messaging gateway, survey tool). Each topic's document
is listed by `contracts.inbound_models()`.
"""
