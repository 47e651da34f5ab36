"""The API's routes, one module per resource; each handler only opens the caller's session,
calls one use case and shapes its answer."""
