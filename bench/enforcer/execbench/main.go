// Command execbench measures what the mamori exec monitor
// (internal/enforcer/bpf) costs and delivers, in one run:
//
//   - the cost of one fork+exec of a tiny static binary with no monitor,
//     with the monitor loaded but the process not targeted, and with the
//     process's cgroup targeted (report mode);
//   - the events per second the monitor delivers, and its drops, while
//     execs are driven from every CPU inside a targeted cgroup;
//   - the monitor process's CPU and RSS, idle and under that load.
//
// The monitor runs in a child process (execbench monitor) so that its CPU
// and memory are measured apart from the exec driver. The driver moves
// itself into a cgroup v1 pids cgroup it creates
// (/sys/fs/cgroup/pids/mamori-bench-*) for the targeted phases, and moves
// back and removes it at the end. It needs root.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mamorisec/mamori/internal/enforcer/bpf"
)

// Goals from issue 7.
const (
	goalUntargetedUS = 3.0
	goalTargetedUS   = 10.0
	goalEventsPerSec = 50000
	goalRSSMB        = 64
	// Falco's published figure (not measured here): 4,372 events/s at
	// 38% CPU.
	falcoEventsPerSec = 4372
	falcoCPUPercent   = 38.0
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "monitor" {
		if err := monitorMain(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "execbench monitor:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("n", 20000, "execs per cost phase")
	bin := flag.String("bin", "", "static binary to exec (default: a 129-byte ELF that calls exit(0))")
	rounds := flag.Int("rounds", 10, "interleaved rounds the execs of each phase are split into")
	burst := flag.Duration("burst", 5*time.Second, "length of the throughput burst")
	pidsRoot := flag.String("pids-root", "/sys/fs/cgroup/pids", "cgroup v1 pids hierarchy")
	flag.Parse()
	if err := run(*n, *rounds, *bin, *burst, *pidsRoot); err != nil {
		fmt.Fprintln(os.Stderr, "execbench:", err)
		os.Exit(1)
	}
}

// tinyELF returns a minimal x86-64 static ELF executable whose only
// instructions are exit(0).
func tinyELF() []byte {
	const base = 0x400000
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax,60; xor edi,edi; syscall
	b := make([]byte, 120, 120+len(code))
	le := binary.LittleEndian
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], base+120) // entry
	le.PutUint64(b[32:], 64)       // phoff
	le.PutUint16(b[52:], 64)       // ehsize
	le.PutUint16(b[54:], 56)       // phentsize
	le.PutUint16(b[56:], 1)        // phnum
	ph := b[64:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // R+X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	size := uint64(120 + len(code))
	le.PutUint64(ph[32:], size)
	le.PutUint64(ph[40:], size)
	le.PutUint64(ph[48:], 0x1000)
	return append(b, code...)
}

// execOnce forks and execs bin and waits for it to exit 0.
func execOnce(bin string, argv []string) error {
	pid, err := syscall.ForkExec(bin, argv, &syscall.ProcAttr{Env: []string{}})
	if err != nil {
		return fmt.Errorf("fork/exec %s: %w", bin, err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return fmt.Errorf("wait for %s: %w", bin, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("%s ended with status %v", bin, ws)
	}
	return nil
}

// costPerExec runs n serial fork+execs and returns each one's wall-clock
// duration in µs, and the mean CPU time per exec in µs (user+system of
// this process and of the reaped children, from getrusage). CPU time is
// not inflated by waiting for a CPU, so it is the steadier figure on a
// loaded host.
func costPerExec(bin string, argv []string, n int) ([]float64, float64, error) {
	out := make([]float64, 0, n)
	cpu0, err := cpuTime()
	if err != nil {
		return nil, 0, err
	}
	for range n {
		start := time.Now()
		if err := execOnce(bin, argv); err != nil {
			return nil, 0, err
		}
		out = append(out, float64(time.Since(start).Nanoseconds())/1000)
	}
	cpu1, err := cpuTime()
	if err != nil {
		return nil, 0, err
	}
	return out, float64((cpu1 - cpu0).Nanoseconds()) / 1000 / float64(n), nil
}

// cpuTime is the user+system time of this process and its reaped
// children.
func cpuTime() (time.Duration, error) {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			return 0, fmt.Errorf("getrusage: %w", err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total, nil
}

// burstExecs runs fork+execs from one goroutine per CPU for d and returns
// how many completed.
func burstExecs(bin string, argv []string, d time.Duration) (int64, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	deadline := time.Now().Add(d)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := execOnce(bin, argv); err != nil {
					errs <- err
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return total.Load(), <-errs
}

// monitorProc is the monitor child and the pipe that drives it.
type monitorProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startMonitor starts the monitor child and moves it into the root cgroup
// pidsRoot, out of the driver's bench cgroup.
func startMonitor(pidsRoot string) (*monitorProc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "monitor")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start monitor child: %w", err)
	}
	m := &monitorProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if err := moveProc(pidsRoot, cmd.Process.Pid); err != nil {
		m.stop()
		return nil, "", err
	}
	line, err := m.reply()
	if err != nil {
		m.stop()
		return nil, "", err
	}
	attach, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		m.stop()
		return nil, "", fmt.Errorf("monitor child said %q, want ready", line)
	}
	return m, attach, nil
}

func (m *monitorProc) reply() (string, error) {
	if !m.out.Scan() {
		if err := m.out.Err(); err != nil {
			return "", fmt.Errorf("monitor child: %w", err)
		}
		return "", errors.New("monitor child exited")
	}
	return m.out.Text(), nil
}

func (m *monitorProc) do(cmd string) (string, error) {
	if _, err := fmt.Fprintln(m.in, cmd); err != nil {
		return "", fmt.Errorf("monitor child %q: %w", cmd, err)
	}
	return m.reply()
}

// counters asks the child for kernel events, drops and received events.
func (m *monitorProc) counters() (events, drops, received uint64, err error) {
	line, err := m.do("stats")
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "%d %d %d", &events, &drops, &received); err != nil {
		return 0, 0, 0, fmt.Errorf("monitor stats %q: %w", line, err)
	}
	return events, drops, received, nil
}

func (m *monitorProc) stop() {
	m.in.Close()
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
}

// monitorMain is the child: it loads the monitor, counts the events it
// receives, and answers "watch ID" and "stats" lines on in.
func monitorMain(in io.Reader, out io.Writer) error {
	mon, err := bpf.Open(bpf.Options{})
	if err != nil {
		return err
	}
	defer mon.Close()
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	defer stats.Close()
	var received atomic.Uint64
	go func() {
		for range mon.Events() {
			received.Add(1)
		}
	}()
	fmt.Fprintln(out, "ready", mon.Attachment())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "watch":
			id, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return fmt.Errorf("watch %q: %w", f[1], err)
			}
			if err := mon.Watch(id, bpf.ActionReport); err != nil {
				return err
			}
			fmt.Fprintln(out, "ok")
		case len(f) == 1 && f[0] == "progstats":
			runs, total, err := mon.ProgramStats()
			if err != nil {
				return err
			}
			fmt.Fprintln(out, runs, total.Nanoseconds())
		case len(f) == 1 && f[0] == "stats":
			s, err := mon.Stats()
			if err != nil {
				return err
			}
			fmt.Fprintln(out, s.Events, s.Drops, received.Load())
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
	}
	return sc.Err()
}

// procUsage is a process's CPU time and resident memory.
type procUsage struct {
	cpu   time.Duration
	rssKB int64
}

func readUsage(pid int) (procUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procUsage{}, err
	}
	ticks, err := parseStatCPU(string(stat))
	if err != nil {
		return procUsage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, err
	}
	rss, err := parseStatusRSS(string(status))
	if err != nil {
		return procUsage{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	// USER_HZ is 100 on Linux.
	return procUsage{cpu: time.Duration(ticks) * 10 * time.Millisecond, rssKB: rss}, nil
}

// parseStatCPU returns utime+stime (in clock ticks) from /proc/<pid>/stat.
func parseStatCPU(s string) (uint64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ... utime(14) stime(15), i.e. f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("utime/stime: %w", err)
	}
	return u + st, nil
}

// parseStatusRSS returns VmRSS in kB from /proc/<pid>/status.
func parseStatusRSS(s string) (int64, error) {
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q, want \"VmRSS: N kB\"", line)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("VmRSS value %q is not a size", f[0])
			}
			return n, nil
		}
	}
	return 0, errors.New("no VmRSS line")
}

// benchCgroup creates a cgroup v1 pids cgroup and returns its directory
// and id (inode number).
func benchCgroup(root string) (string, uint64, error) {
	var r [4]byte
	_, _ = rand.Read(r[:])
	dir := filepath.Join(root, "mamori-bench-"+hex.EncodeToString(r[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", 0, fmt.Errorf("create bench cgroup: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		os.Remove(dir)
		return "", 0, fmt.Errorf("stat bench cgroup: %w", err)
	}
	return dir, st.Ino, nil
}

func moveSelf(dir string) error { return moveProc(dir, os.Getpid()) }

// moveProc moves process pid into the cgroup v1 directory dir.
func moveProc(dir string, pid int) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("move process %d into %s: %w", pid, dir, err)
	}
	return nil
}

// progStats asks the child for the program's run count and run time.
func (m *monitorProc) progStats() (runs, ns uint64, err error) {
	line, err := m.do("progstats")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "%d %d", &runs, &ns); err != nil {
		return 0, 0, fmt.Errorf("monitor progstats %q: %w", line, err)
	}
	return runs, ns, nil
}

// nsPerRun is the mean program run time between two progStats readings.
func nsPerRun(runs0, ns0, runs1, ns1 uint64) float64 {
	if runs1 <= runs0 {
		return 0
	}
	return float64(ns1-ns0) / float64(runs1-runs0)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// round is one interleaved measurement: no monitor, then a fresh monitor
// with the driver outside and then inside the watched cgroup.
type round struct {
	base, untargeted, targeted          []float64 // wall-clock µs per exec
	baseCPU, untargetedCPU, targetedCPU float64   // mean CPU µs per exec
	missNS, hitNS                       float64   // program run time per exec
}

// measureRound measures the three phases with the driver already in the
// bench cgroup dir (id), so that all three pay the same cgroup costs and
// differ only in the monitor.
func measureRound(bin string, argv []string, per int, pidsRoot string, id uint64) (r round, err error) {
	if r.base, r.baseCPU, err = costPerExec(bin, argv, per); err != nil {
		return r, err
	}
	mon, _, err := startMonitor(pidsRoot)
	if err != nil {
		return r, err
	}
	defer mon.stop()
	runs0, ns0, err := mon.progStats()
	if err != nil {
		return r, err
	}
	if r.untargeted, r.untargetedCPU, err = costPerExec(bin, argv, per); err != nil {
		return r, err
	}
	runs1, ns1, err := mon.progStats()
	if err != nil {
		return r, err
	}
	if resp, err := mon.do(fmt.Sprintf("watch %d", id)); err != nil || resp != "ok" {
		return r, fmt.Errorf("watch bench cgroup %d: %q %v", id, resp, err)
	}
	if r.targeted, r.targetedCPU, err = costPerExec(bin, argv, per); err != nil {
		return r, err
	}
	runs2, ns2, err := mon.progStats()
	if err != nil {
		return r, err
	}
	events, drops, _, err := mon.counters()
	if err != nil {
		return r, err
	}
	if events < uint64(per) || drops != 0 {
		return r, fmt.Errorf("monitor reported %d events and %d drops for %d targeted execs", events, drops, per)
	}
	r.missNS = nsPerRun(runs0, ns0, runs1, ns1)
	r.hitNS = nsPerRun(runs1, ns1, runs2, ns2)
	return r, nil
}

func run(n, rounds int, bin string, burst time.Duration, pidsRoot string) (err error) {
	argv := []string{"true"}
	if bin == "" {
		f, err := os.CreateTemp("", "execbench-true-")
		if err != nil {
			return err
		}
		bin = f.Name()
		defer os.Remove(bin)
		if _, err := f.Write(tinyELF()); err != nil {
			return err
		}
		if err := f.Chmod(0o755); err != nil {
			return err
		}
		f.Close()
	}
	if rounds < 1 || n < rounds {
		return fmt.Errorf("need n >= rounds >= 1, got n=%d rounds=%d", n, rounds)
	}
	fmt.Printf("execbench: %d CPUs, %s, exec target %s, n=%d per phase in %d interleaved rounds\n",
		runtime.NumCPU(), kernelRelease(), bin, n, rounds)

	dir, id, err := benchCgroup(pidsRoot)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.Remove(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove bench cgroup: %w", rerr)
		}
	}()
	if err := moveSelf(dir); err != nil {
		return err
	}
	defer func() {
		if merr := moveSelf(pidsRoot); merr != nil && err == nil {
			err = merr
		}
	}()
	if _, _, err := costPerExec(bin, argv, n/10+1); err != nil { // warm up
		return err
	}
	per := n / rounds
	var base, untargeted, targeted, addU, addT, miss, hit []float64
	var cpuB, cpuU, cpuT []float64
	for range rounds {
		r, err := measureRound(bin, argv, per, pidsRoot, id)
		if err != nil {
			return err
		}
		base = append(base, r.base...)
		untargeted = append(untargeted, r.untargeted...)
		targeted = append(targeted, r.targeted...)
		addU = append(addU, median(r.untargeted)-median(r.base))
		addT = append(addT, median(r.targeted)-median(r.base))
		cpuB = append(cpuB, r.baseCPU)
		cpuU = append(cpuU, r.untargetedCPU)
		cpuT = append(cpuT, r.targetedCPU)
		miss = append(miss, r.missNS)
		hit = append(hit, r.hitNS)
	}
	mb, mu, mt := median(base), median(untargeted), median(targeted)

	// Throughput and monitor footprint with a fresh monitor.
	mon, attach, err := startMonitor(pidsRoot)
	if err != nil {
		return err
	}
	defer mon.stop()
	pid := mon.cmd.Process.Pid
	u0, err := readUsage(pid)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	u1, err := readUsage(pid)
	if err != nil {
		return err
	}
	idleCPU := 100 * (u1.cpu - u0.cpu).Seconds() / 2
	if resp, err := mon.do(fmt.Sprintf("watch %d", id)); err != nil || resp != "ok" {
		return fmt.Errorf("watch bench cgroup %d: %q %v", id, resp, err)
	}
	e0, d0, r0, err := mon.counters()
	if err != nil {
		return err
	}
	ub0, _ := readUsage(pid)
	start := time.Now()
	execs, berr := burstExecs(bin, argv, burst)
	elapsed := time.Since(start)
	ub1, _ := readUsage(pid)
	if berr != nil {
		return berr
	}
	time.Sleep(500 * time.Millisecond) // let the consumer drain
	e1, d1, r1, err := mon.counters()
	if err != nil {
		return err
	}
	loadCPU := 100 * (ub1.cpu - ub0.cpu).Seconds() / elapsed.Seconds()
	evPerSec := float64(r1-r0) / elapsed.Seconds()

	fmt.Printf("monitor attached as %s, in its own process\n\n", attach)
	fmt.Printf("cost per serial fork+exec+wait: median of %d single execs per phase, in %d interleaved rounds:\n", len(base), rounds)
	fmt.Printf("  no monitor            %7.2f µs (mean %.2f)\n", mb, mean(base))
	fmt.Printf("  loaded, not targeted  %7.2f µs (mean %.2f)  added %+6.2f µs  goal < %.0f µs: %s\n", mu, mean(untargeted), mu-mb, goalUntargetedUS, verdict(mu-mb < goalUntargetedUS))
	fmt.Printf("  targeted, report      %7.2f µs (mean %.2f)  added %+6.2f µs  goal < %.0f µs: %s\n", mt, mean(targeted), mt-mb, goalTargetedUS, verdict(mt-mb < goalTargetedUS))
	cb, cu, ct := mean(cpuB), mean(cpuU), mean(cpuT)
	fmt.Printf("  CPU time per exec (getrusage, driver + children): none %.2f µs, not targeted %.2f µs (%+.2f), targeted %.2f µs (%+.2f)\n",
		cb, cu, cu-cb, ct, ct-cb)
	fmt.Printf("  kernel-measured BPF program time per exec (bpf_stats): not targeted %.0f ns, targeted %.0f ns\n", median(miss), median(hit))
	fmt.Printf("  per-round added µs (median differences), not targeted: %s\n", fmtList(addU))
	fmt.Printf("  per-round added µs (median differences), targeted:     %s\n\n", fmtList(addT))
	fmt.Printf("burst: %d execs in %.2fs from %d goroutines in a targeted cgroup\n", execs, elapsed.Seconds(), runtime.NumCPU())
	fmt.Printf("  kernel events %d, received %d, drops %d\n", e1-e0, r1-r0, d1-d0)
	fmt.Printf("  delivered %.0f events/s; goal zero drops at %d events/s: %s\n", evPerSec, goalEventsPerSec, goalVerdict(d1 == d0, evPerSec >= goalEventsPerSec))
	fmt.Printf("monitor process: idle CPU %.1f%%, RSS %.1f MB; under load CPU %.1f%% of one core, RSS %.1f MB; goal RSS < %d MB: %s\n",
		idleCPU, float64(u1.rssKB)/1024, loadCPU, float64(ub1.rssKB)/1024, goalRSSMB, verdict(ub1.rssKB < goalRSSMB*1024))
	perCPU := "n/a"
	if loadCPU > 0 {
		perCPU = fmt.Sprintf("%.0f events/s per 1%% CPU (user-space consumer only; BPF time is charged to the exec'ing tasks)", evPerSec/loadCPU)
	}
	fmt.Printf("Falco (published figure, not measured here): %d events/s at %.0f%% CPU = %.0f events/s per 1%% CPU; mamori here: %s\n",
		falcoEventsPerSec, falcoCPUPercent, falcoEventsPerSec/falcoCPUPercent, perCPU)
	return nil
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func fmtList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%+.1f", x)
	}
	return strings.Join(parts, " ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func goalVerdict(noDrops, rateReached bool) string {
	switch {
	case noDrops && rateReached:
		return "met"
	case noDrops:
		return "zero drops, but this host cannot exec that fast (rate not reached)"
	default:
		return "NOT met (drops)"
	}
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "unknown kernel"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return "Linux " + b.String()
}
