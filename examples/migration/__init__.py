"""ADR-014's migration guide as runnable apps: REST and GraphQL, before and after."""
