"""The tooling around the services: the local stack, the `saga` command, the supervisor, migrations.

It may import the services; nothing in common/ or a service imports it (tests/unit/test_package_layout.py).
"""
