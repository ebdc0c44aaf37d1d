"""A runnable tour of celery-jobs-ext: ``python -m celery_jobs_ext.demo``."""
