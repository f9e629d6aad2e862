"""Housekeeping (DESIGN §8): scheduled and on-demand jobs, their leases and run history.

- :mod:`cron` parses schedules; :mod:`scheduler` fires jobs on them;
- :mod:`housekeeper` runs one job under its lease and records the run;
- :mod:`jobs` holds the jobs; :mod:`leases` and :mod:`runs` the units of work
  on ``job_lease`` and ``housekeeping_run``; :mod:`files` the file output.
"""
