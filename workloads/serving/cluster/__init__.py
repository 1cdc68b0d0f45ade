"""Model serving on a cluster: KServe InferenceServices and the resources around them.

``builders`` renders every serving pattern (single model, multi-model, transformer, canary, A/B,
shadow) for the stack's KServe deployment mode as plain Kubernetes objects; ``models`` resolves
registered MLflow model versions to object-storage URIs and serving runtimes; ``apply`` sends the
objects to the cluster and promotes or rolls back canaries; ``log_sink`` is the request-log sink
the rendered ``logger`` specs point at.
"""
