// Package deploytest holds the tests of the Kubernetes deployment files in
// deploy/: the Helm chart deploy/helm/mamori and the OpenShift manifests in
// deploy/openshift. They run the real helm binary (built by
// scripts/build-helm.sh) and apply the rendered manifests to a real
// kube-apiserver (testenv.KubeAPIServer).
package deploytest
