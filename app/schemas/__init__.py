"""Request and response shapes of the JSON API (pydantic), one module per area."""
