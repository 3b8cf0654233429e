"""Building indexes: the build job, embedding reuse, lifecycle (verify, rollback), watch, jobs."""
