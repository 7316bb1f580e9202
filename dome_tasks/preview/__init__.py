"""Preview environments: every service of a pull request deployed as ``<service>-pr-N`` with
its own resources (``derive``), recorded in the account (``record``), brought up and torn down
(``up``, ``down``)."""
