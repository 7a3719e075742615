package admission

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// TestRuntimeExec decides execs with a compiled runtime policy bundle.
func TestRuntimeExec(t *testing.T) {
	bundle := func(protect bool) *runtimepolicy.Set {
		b := fleet.PolicyBundle{Revision: 1, Settings: fleet.GroupSettings{ContainerProtection: protect},
			Bypass: fleet.Bypass{Namespaces: []string{"kube-system"}},
			Policies: []json.RawMessage{
				json.RawMessage(`{"name":"pay","enabled":true,"mode":"enforce","criteria":"namespace == \"payments\"","controls":{"blockExec":{"allowedProcesses":["/usr/bin/env","date"]}}}`),
				json.RawMessage(`{"name":"watch","enabled":true,"mode":"audit","criteria":"label[\"tier\"] == \"web\"","controls":{"blockExec":{}}}`),
			}}
		s, err := runtimepolicy.Compile(b, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	on, off := bundle(true), bundle(false)
	tests := []struct {
		name      string
		set       *runtimepolicy.Set
		ns        string
		labels    map[string]string
		cmd       []string
		allow     bool
		mode      string
		policy    string
		reasonHas string
	}{
		{"no bundle", nil, "payments", nil, []string{"sh"}, true, "", "", ""},
		{"protection off", off, "payments", nil, []string{"sh"}, true, "", "", ""},
		{"shell denied", on, "payments", nil, []string{"sh"}, false, "enforce", "pay", "sh, which is not an allowed process"},
		{"allowed path", on, "payments", nil, []string{"/usr/bin/env"}, true, "", "", ""},
		{"other path of allowed name", on, "payments", nil, []string{"/tmp/env"}, false, "enforce", "pay", "not an allowed process"},
		{"allowed base name", on, "payments", nil, []string{"/bin/date", "-u"}, true, "", "", ""},
		{"attach denied", on, "payments", nil, nil, false, "enforce", "pay", "attach and port-forward"},
		{"out of scope", on, "shop", nil, []string{"sh"}, true, "", "", ""},
		{"audit policy", on, "shop", map[string]string{"tier": "web"}, []string{"sh"}, false, "audit", "watch", "not an allowed process"},
		{"bypassed namespace", on, "kube-system", map[string]string{"tier": "web"}, []string{"sh"}, true, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := RuntimeExec{Policies: func() *runtimepolicy.Set { return tc.set }, Cluster: "c1"}
			allow, mode, policy, reason := r.Decide(tc.ns, "p1", tc.labels, tc.cmd)
			if allow != tc.allow || mode != tc.mode || policy != tc.policy || !strings.Contains(reason, tc.reasonHas) {
				t.Errorf("Decide = %v %q %q %q, want %v %q %q …%s…", allow, mode, policy, reason, tc.allow, tc.mode, tc.policy, tc.reasonHas)
			}
		})
	}
}
