"""The database: engine and units of work, the embedded server, migrations, the read path, status."""
