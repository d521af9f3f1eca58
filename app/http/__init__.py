"""HTTP plumbing shared by the JSON API and the pages: request context, authentication,
CSRF, the API router (which also feeds the OpenAPI document), error rendering, headers."""
