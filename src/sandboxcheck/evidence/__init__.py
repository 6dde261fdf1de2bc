"""Evidence observed outside the sandbox, and the verdict drawn from it."""
