#!/usr/bin/env bash
# Install the pinned KubeRay operator (v1.7.0: the CRDs launch's manifests are checked
# against) into the current kube context, then the `launch` namespace, its RBAC and the S3
# store. Needs kubectl and helm. Idempotent: rerun to upgrade in place.
set -euo pipefail
KUBERAY_VERSION=1.7.0
here="$(cd "$(dirname "$0")" && pwd)"

helm repo add kuberay https://ray-project.github.io/kuberay-helm/ >/dev/null
helm repo update kuberay >/dev/null
helm upgrade --install kuberay-operator kuberay/kuberay-operator \
  --version "$KUBERAY_VERSION" --namespace kuberay-system --create-namespace --wait
kubectl wait --for condition=established --timeout=120s crd/rayjobs.ray.io

kubectl apply -f "$here/namespace.yaml" -f "$here/launcher-rbac.yaml"
if ! kubectl -n launch get secret launch-storage seaweedfs-s3 >/dev/null 2>&1; then
  echo "create the storage secrets first (see k8s/storage-secret.yaml), then rerun" >&2
  exit 1
fi
kubectl apply -f "$here/seaweedfs.yaml"
kubectl -n launch rollout status deployment/seaweedfs --timeout=180s
echo "KubeRay $KUBERAY_VERSION and the S3 store are ready in namespace launch"
