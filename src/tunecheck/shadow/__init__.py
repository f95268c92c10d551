"""After the offline verdict: shadow deployment and A/B tests on real traffic.

* :mod:`tunecheck.shadow.proxy` — ``tunecheck shadow``, an OpenAI-compatible proxy that
  serves every request from production and mirrors a copy to the candidate (or, with
  ``--split``, serves a sticky share of users from the candidate).
* :mod:`tunecheck.shadow.log` — the request log in the run store.
* :mod:`tunecheck.shadow.report` / :mod:`tunecheck.shadow.export` — what the pairs say,
  and the pairs as a new held-out data set.
* :mod:`tunecheck.shadow.ab`, :mod:`tunecheck.shadow.sequential`,
  :mod:`tunecheck.shadow.plan` — A/B analysis: interval, always-valid sequential test,
  sample-ratio-mismatch check, sample-size planning.
"""
