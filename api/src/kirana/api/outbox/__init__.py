"""Transactional outbox: events written in the same transaction as the change they describe.

Services call `outbox.service.emit(...)` inside their unit of work; the workers' relay publishes
committed events to Redis, so no event is lost when a process dies between commit and publish.
"""
