// Package kubee2e holds the end-to-end test of the kube-enforcer: the real
// kube-apiserver (testenv.KubeAPIServer) and kubectl, the real console
// server (internal/server on SQLite, in process, over HTTPS), a real
// registry (testenv.Distribution) holding the demo image, and the
// kube-enforcer process of internal/kube/enforcer wired to all three. It has
// no non-test code.
package kubee2e
