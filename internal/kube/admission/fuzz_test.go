package admission

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("mode: audit\nbypassNamespaces: [kube-system, monitoring]\nimages: {unscanned: scan}\nposture: {hostPath: enforce}\n"))
	f.Add([]byte("posture: {allowedCapabilities: [CAP_NET_ADMIN]}"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed configuration does not validate: %v", err)
		}
		if _, err := NewHandler(c, &stubVerdicts{}, nil, nil, nil); err != nil {
			t.Fatalf("parsed configuration rejected by NewHandler: %v", err)
		}
	})
}

func FuzzParseExecRules(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "exec-rules.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("rules: [{name: x, mode: audit, namespaces: ['[']}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseExecRules(data)
		if err != nil {
			return
		}
		r.Decide("ns", "pod", map[string]string{"a": "b"}, []string{"/bin/sh"})
		r.Decide("ns", "pod", nil, nil)
	})
}
