"""Around a deploy, as observe -> decide -> act: ``session`` (the run context and its act phase),
``deploy`` (deploy + verify + automatic rollback), ``traffic`` (status, rollback, canary, promote,
abort), ``migrate`` (remote D1 migrations), ``account`` (secrets, logs, resources), ``verify``,
``ledger`` and ``metrics``. The records are kept behind one interface (``record_store``: memory,
the ledger file, the account's ``account_store``) with one policy above it (``history``)."""
