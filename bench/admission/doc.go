// Package admissionbench measures the admission decision latency of the
// kube-enforcer webhook (internal/kube/admission): AdmissionReview POSTs
// straight to the handler over real HTTPS, and Pod creates with
// dry-run=All through a real kube-apiserver that calls the webhook. The
// benchmark is a test, skipped unless MAMORI_BENCH=1:
//
//	scripts/build-kube.sh        # once: kube-apiserver, etcd, kubectl
//	bench/admission/run.sh [-rate 200] [-duration 30s]
package admissionbench
