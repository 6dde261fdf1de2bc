"""Check matrices and suites: loading with line numbers, schema and semantic checks, selection."""
