"""Report formats for runs, surveys, comparisons and fleets."""
