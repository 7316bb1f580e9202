"""Invoke task modules: thin layers that parse arguments, call the library and print."""
