"""A local stand-in for Razorpay's HTTP API, for development and tests only.

It lives in the installed package (not under tests/) because `kirana run` starts it when no
Razorpay keys are set, so a newcomer can pay for an order on one machine; the integration tests
start the same server. It speaks the API the way the official `razorpay` SDK uses it (reached
through `razorpay.Client(base_url=...)`), pays orders as a customer's Checkout would, and sends
signed webhooks with configurable duplication, reordering, delay and loss.
"""
