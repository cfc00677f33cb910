"""Connections to the systems secrets belong to (databases, for now), for the rotators
and the dynamic credentials. Their drivers are imported only here, and only when used."""
