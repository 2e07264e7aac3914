"""Ports: the typing.Protocol interfaces the service talks to the world through."""
