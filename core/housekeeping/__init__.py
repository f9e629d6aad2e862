"""Housekeeping (DESIGN §8): scheduled and on-demand jobs, their leases and run history.

- L{cron} parses schedules; L{scheduler} fires jobs on them;
- L{housekeeper} runs one job under its lease and records the run;
- L{jobs} holds the jobs; L{leases} and L{runs} the units of work
  on C{job_lease} and C{housekeeping_run}; L{files} the file output.
"""
