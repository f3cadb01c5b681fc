"""Luigi tasks of pvl8da: ``python -m luigi --module tasks <Task> ...`` from the repository root."""
