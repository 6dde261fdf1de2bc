"""Running checks: throwaway roots, launching targets, sessions, the scheduler."""
