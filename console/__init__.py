"""The saga console: a server-rendered web page for operators, its own process (`python -m console`).

It reads and acts through the three services' HTTP APIs only (common/service_apis.py), with the operator key
an operator signs in with, so it works against any deployment and holds no credential of its own.
"""
