package agent

import (
	"strconv"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/fanotify"
	"github.com/mamorisec/mamori/internal/testenv"
)

// BenchmarkDecide measures one pre-exec decision of the guard for a
// process of an exec session (blockExec and driftPrevention in force).
func BenchmarkDecide(b *testing.B) {
	needHost(b)
	label := "bench" + strconv.Itoa(b.N)
	id := testenv.RunContainer(b, testenv.BusyboxImage(b), []string{"--label", "mamori.test=" + label}, "sleep", "600")
	testenv.DockerCLI(b, nil, "exec", "-d", id, "sh", "-c", "sleep 600; true")
	h := startAgent(b, policyJSON(label, "enforce", `{"blockExec": {"allowedProcesses": ["busybox"]}, "driftPrevention": {}}`), nil)
	var pid int
	waitFor(b, 15*time.Second, "exec session process", func() bool {
		c, ok := h.a.tracker.Container(id)
		if !ok {
			return false
		}
		for _, p := range h.a.tracker.Containers() {
			if p.ID != id {
				continue
			}
			for _, pr := range p.Processes {
				if pr.PID != c.PID && len(pr.Args) == 2 && pr.Args[0] == "sleep" && pr.PPID != c.PID {
					pid = pr.PID
				}
			}
		}
		_, _, marked, ok := h.a.lookup(id)
		return ok && marked && pid != 0
	})
	b.ResetTimer()
	for range b.N {
		if v := h.a.decide(fanotify.Request{Container: id, PID: pid, Path: "/bin/busybox"}); v != fanotify.Allow {
			b.Fatal("denied")
		}
	}
}
