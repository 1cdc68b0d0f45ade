"""GPU scheduling workloads: a smoke Job, a GPU-sharing demo, and serving/batch priority classes.

``manifests`` renders plain Kubernetes objects from a :class:`~workloads.gpu.manifests.GpuPlacement`
(the pool's node selector, tolerations and advertised resource); ``apply`` sends them to a cluster
through a kubeconfig. ``mlp gpu render|apply`` wires both to a stack.
"""
