"""``install.py doctor`` / ``bash trouble_shooting.sh``: what is wrong with a deployment, and why.

One module per concern: ``result`` (a finding), ``runner`` and ``report``, then the checks
(``docker_checks``, ``service_checks``, ``license_checks``, ``host_checks``, ``log_checks``)
and ``bundle`` (the support tar.gz for the vendor).
"""
