"""What the services run on: the HTTP edge, Kafka, the database, messaging, events.

It imports no service and no tooling (tests/unit/test_package_layout.py); the tooling is saga_tools/.
"""
