"""Running the pinned wrangler: argv builders, the hermetic environment, execution with
retries, its output records, failure classes and remedies."""
