"""Model-serving add-ons: cert-manager, KServe, Knative Serving with Kourier, and KEDA.

One component per job. The stack layer (``stacks/addons_serving.py``) decides which of them a stack
gets from its ``mlplatform:serving`` config and wires the order: cert-manager before KServe, the
Knative networking layer (Serverless) or KEDA (RawDeployment, request-based autoscaling) before the
KServe controller, KServe's CRDs before its controller before its ClusterServingRuntimes.
"""
