"""The live runner: ingest → detect → persist → dispatch (wiring only; built in issue 5)."""
