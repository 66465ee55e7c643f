"""Command-line interface. Each command lives in its own module with a ``register(app)`` function;
commands import heavy modules inside their bodies so ``mlcost --help`` stays fast and torch-free."""
