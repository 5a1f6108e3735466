"""Outgoing webhooks: endpoints, fan-out of events into deliveries, signed delivery with retries."""
