"""The app a server of its own process serves in the routing differential (daphne, granian):
named by ROUTING_APP and ROUTING_GATED, built when the server imports this module."""

from tests.routing.routing_apps import from_env

application = from_env()
