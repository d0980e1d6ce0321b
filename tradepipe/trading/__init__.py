"""The trading cycle's application services: the runner, its unit of work, the broker interface, order sync,
backtests, the warm-up and weight publishing."""
