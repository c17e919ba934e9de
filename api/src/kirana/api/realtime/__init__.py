"""Real time: order and store notifications over WebSockets, across replicas, resumable.

`channels` (pure: names, who may subscribe, which outbox events go where), `broker` (the Redis
side: numbered history and fan-out, shared by the workers' relay and the API), `hub` (one per API
process: the live sockets), `router` (`GET /v1/ws`, `POST /v1/ws/ticket`, `/asyncapi.json`).
See docs/realtime.md.
"""
