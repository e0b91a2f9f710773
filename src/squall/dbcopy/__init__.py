"""Moving a Squall to another database: ``squall db copy`` copies every table of the current
database into an empty PostgreSQL one, from one snapshot, and verifies the result; ``squall
storage copy`` moves the stored objects to S3. Wiring, like the CLI: it reads every domain's
tables through the model registry."""
