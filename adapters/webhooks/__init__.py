"""Webhooks: the log's transmissions and cancellations pushed to subscribed software."""
