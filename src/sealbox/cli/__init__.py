"""The sealbox command line: parse, call the core, format. No storage or crypto here."""
