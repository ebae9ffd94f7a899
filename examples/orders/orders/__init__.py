"""The orders service: POST /orders charges a payment gateway, stores the order, publishes OrderCreated."""
