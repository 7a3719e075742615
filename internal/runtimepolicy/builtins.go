package runtimepolicy

// Names of the built-in policies.
const (
	BuiltinDefault = "default"
	BuiltinCIS     = "cis-docker-benchmark"
	BuiltinNIST    = "nist-sp-800-190"
	BuiltinPCI     = "pci-dss"
	BuiltinHIPAA   = "hipaa"
)

// baselineSyscalls are system calls an application container has no use
// for and that break out of, or reach into, the kernel: module loading,
// kexec, keyrings, mounts, namespaces, BPF, tracing, clock and reboot.
var baselineSyscalls = []string{
	"add_key", "bpf", "delete_module", "finit_module", "init_module", "kexec_file_load", "kexec_load",
	"keyctl", "mount", "open_by_handle_at", "perf_event_open", "pivot_root", "ptrace", "reboot",
	"request_key", "setns", "swapoff", "swapon", "umount2", "unshare",
}

// systemPaths are the files whose change means the container was tampered
// with: system configuration, binaries and libraries.
var systemPaths = []string{
	"/etc/**", "/bin/**", "/sbin/**", "/usr/bin/**", "/usr/sbin/**", "/lib/**", "/usr/lib/**",
}

// Builtins returns the built-in policies, in a fixed order. All are in
// audit mode. "default" is enabled; the compliance baselines are disabled
// templates to enable or copy. The baselines are inspired by the named
// documents (docs/runtime-policies.md maps each control to a clause);
// enabling one does not make a system compliant with anything.
func Builtins() []Policy {
	on := &Toggle{Enabled: true}
	return []Policy{
		{
			Name:        BuiltinDefault,
			Description: "Detects reverse shells, crypto miners and executables that are not part of the image.",
			Enabled:     true,
			Mode:        Audit,
			Controls: Controls{
				ReverseShell:    on,
				CryptoMiner:     on,
				DriftPrevention: &DriftPrevention{},
			},
		},
		{
			Name:        BuiltinCIS,
			Description: "Baseline inspired by the CIS Docker Benchmark, section 5 (container runtime): PID limit, restricted system calls, exec sessions and an immutable container.",
			Mode:        Audit,
			Controls: Controls{
				ForkGuard:       &ForkGuard{MaxProcesses: 1024},
				BlockedSyscalls: &List{Items: baselineSyscalls},
				BlockExec:       &BlockExec{},
				DriftPrevention: &DriftPrevention{},
			},
		},
		{
			Name:        BuiltinNIST,
			Description: "Baseline inspired by NIST SP 800-190, section 4.4 (container risks): only vetted images, immutable containers, runtime anomaly detection and restricted system calls.",
			Mode:        Audit,
			Controls: Controls{
				BlockUnapprovedImages: on,
				DriftPrevention:       &DriftPrevention{},
				ReverseShell:          on,
				CryptoMiner:           on,
				BlockedSyscalls:       &List{Items: baselineSyscalls},
				ForkGuard:             &ForkGuard{MaxProcesses: 4096},
			},
		},
		{
			Name:        BuiltinPCI,
			Description: "Baseline inspired by PCI DSS v4.0: malware protection (req. 5), change detection on critical files (req. 11.5), secure configuration (req. 2.2) and vetted images (req. 6.3).",
			Mode:        Audit,
			Controls: Controls{
				CryptoMiner:           on,
				ReverseShell:          on,
				FileIntegrity:         &FileIntegrity{Paths: systemPaths},
				DriftPrevention:       &DriftPrevention{},
				BlockedSyscalls:       &List{Items: baselineSyscalls},
				BlockUnapprovedImages: on,
			},
		},
		{
			Name:        BuiltinHIPAA,
			Description: "Baseline inspired by the HIPAA Security Rule technical safeguards (45 CFR 164.312): access control, audit controls, integrity, and protection from malicious software (164.308).",
			Mode:        Audit,
			Controls: Controls{
				BlockExec:       &BlockExec{},
				FileIntegrity:   &FileIntegrity{Paths: systemPaths},
				DriftPrevention: &DriftPrevention{},
				CryptoMiner:     on,
				ReverseShell:    on,
			},
		},
	}
}
