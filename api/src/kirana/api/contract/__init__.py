"""The OpenAPI document as the truth about the HTTP API.

`document.build(app)` (installed by `create_app` as `app.openapi`) starts from FastAPI's
document and adds what the routes' dependencies say about them: the security each access rule
demands (`x-permission`), the errors each dependency can raise (`errors.raises`) as
`application/problem+json` answers, and the headers the server really reads and sends.
`catalogue` lists every problem type (rendered as docs/errors.md); `examples` holds an example
of each request body.
"""
