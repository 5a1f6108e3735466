"""Deliverability checks: crm doctor and GET /api/v1/deliverability."""
