"""Secrets: what each worker declares (``secrets:`` in dome.yaml), what the API says it has
(``status``), and setting them from a dotenv file or the environment (``source``, ``sync``)."""
