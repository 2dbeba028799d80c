"""Kubernetes for the kubernetes target: KubeRay manifests, pod diagnosis, API access.

The `kubernetes` client is imported only inside functions that talk to a cluster, so
rendering manifests (and `launch --help`) stays fast and needs no cluster.
"""
