"""The ``mlp`` command line: plan stacks offline, report GPU cost, run the workloads."""
