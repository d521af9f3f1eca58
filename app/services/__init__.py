"""Business logic, one module per area. Functions take a database session and plain values,
raise :mod:`app.errors` exceptions, and never build HTTP responses."""
