package container

import (
	"strings"
	"testing"
)

const (
	id1 = "26d9d236f6ba091326c33bf5d791b1365b494e06c62d609166469f91beba5993"
	id2 = "cb0439be7e504eac0442161bc7a33ebbed4834eaecb40ad69b078d7526fdbd64"
)

var cgroupPathTests = []struct {
	name string
	path string
	want CgroupRef
	ok   bool
}{
	{"docker cgroupfs v1", "/docker/" + id1, CgroupRef{ID: id1, Runtime: "docker"}, true},
	{"docker systemd", "/system.slice/docker-" + id1 + ".scope", CgroupRef{ID: id1, Runtime: "docker"}, true},
	{"docker custom parent", "/mamori/" + id1, CgroupRef{ID: id1}, true},
	{"docker in docker", "/docker/" + id1 + "/docker/" + id2, CgroupRef{ID: id2, Runtime: "docker"}, true},
	{"containerd systemd kubepods",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d7a2a4e_5b1f_4a4c_9c1e_2f3b4c5d6e7f.slice/cri-containerd-" + id1 + ".scope",
		CgroupRef{ID: id1, Runtime: "containerd", PodUID: "0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f"}, true},
	{"kubepods cgroupfs burstable", "/kubepods/burstable/pod0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f/" + id1,
		CgroupRef{ID: id1, Runtime: "cri", PodUID: "0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f"}, true},
	{"kubepods cgroupfs guaranteed", "/kubepods/pod0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f/" + id2,
		CgroupRef{ID: id2, Runtime: "cri", PodUID: "0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f"}, true},
	{"crio systemd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222_3333_4444_555555555555.slice/crio-" + id1 + ".scope",
		CgroupRef{ID: id1, Runtime: "cri-o", PodUID: "11111111-2222-3333-4444-555555555555"}, true},
	{"crio conmon is not the container", "/kubepods.slice/kubepods-besteffort.slice/crio-conmon-" + id1 + ".scope", CgroupRef{}, false},
	{"crio cgroupfs", "/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/crio-" + id1,
		CgroupRef{ID: id1, Runtime: "cri-o", PodUID: "11111111-2222-3333-4444-555555555555"}, true},
	{"podman", "/machine.slice/libpod-" + id1 + ".scope", CgroupRef{ID: id1, Runtime: "podman"}, true},
	{"v2 nested init cgroup", "/system.slice/docker-" + id1 + ".scope/init.scope", CgroupRef{ID: id1, Runtime: "docker"}, true},
	{"host root", "/", CgroupRef{}, false},
	{"host service", "/system.slice/ssh.service", CgroupRef{}, false},
	{"user session", "/user.slice/user-0.slice/session-1.scope", CgroupRef{}, false},
	{"short id", "/docker/26d9d236f6ba", CgroupRef{}, false},
	{"uppercase id", "/docker/" + strings.ToUpper(id1), CgroupRef{}, false},
	{"docker scope with bad id", "/system.slice/docker-xyz.scope", CgroupRef{}, false},
	{"empty", "", CgroupRef{}, false},
}

func TestParseCgroupPath(t *testing.T) {
	for _, tt := range cgroupPathTests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseCgroupPath(tt.path)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseCgroupPath(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int // lines
		wantID  string
		wantErr string
	}{
		{"v1 hybrid", "9:name=systemd:/docker/" + id1 + "\n8:pids:/docker/" + id1 + "\n0::/docker/" + id1 + "\n", 3, id1, ""},
		{"v2 only", "0::/system.slice/docker-" + id1 + ".scope\n", 1, id1, ""},
		{"host", "8:pids:/\n0::/init.scope\n", 2, "", ""},
		{"empty", "", 0, "", ""},
		{"no colons", "garbage\n", 0, "", "want hierarchy:controllers:path"},
		{"bad hierarchy", "x:pids:/\n", 0, "", "bad hierarchy id"},
		{"negative hierarchy", "-1:pids:/\n", 0, "", "bad hierarchy id"},
		{"relative path", "0::docker\n", 0, "", "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := ParseProcCgroup([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != tt.want {
				t.Fatalf("%d lines, want %d: %+v", len(lines), tt.want, lines)
			}
			ref, ok := ContainerOf(lines)
			if ref.ID != tt.wantID || ok != (tt.wantID != "") {
				t.Errorf("ContainerOf = %+v, %v; want %q", ref, ok, tt.wantID)
			}
		})
	}
}

func TestParseCgroupMounts(t *testing.T) {
	const mi = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:38 /sub /mnt/other rw,relatime - cgroup2 cgroup2 rw
`
	got := parseCgroupMounts([]byte(mi))
	want := cgroupMounts{pids: "/sys/fs/cgroup/pids", unified: "/sys/fs/cgroup/unified"}
	if got != want {
		t.Errorf("parseCgroupMounts = %+v, want %+v", got, want)
	}
}

func FuzzParseCgroupPath(f *testing.F) {
	for _, tt := range cgroupPathTests {
		f.Add(tt.path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		ref, ok := ParseCgroupPath(path)
		if ok != (ref.ID != "") {
			t.Fatalf("ok=%v with id %q", ok, ref.ID)
		}
		if ok && (!isContainerID(ref.ID) || !strings.Contains(path, ref.ID)) {
			t.Fatalf("id %q is not a full id taken from %q", ref.ID, path)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("9:name=systemd:/docker/" + id1 + "\n8:pids:/docker/" + id1 + "\n0::/docker/" + id1 + "\n"))
	f.Add([]byte("0::/system.slice/docker-" + id1 + ".scope\n"))
	f.Add([]byte("x:y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseProcCgroup(data)
		if err != nil {
			return
		}
		for _, l := range lines {
			if l.Hierarchy < 0 || !strings.HasPrefix(l.Path, "/") {
				t.Fatalf("bad line accepted: %+v", l)
			}
		}
		ContainerOf(lines)
	})
}

func FuzzMountinfo(f *testing.F) {
	f.Add([]byte("72 48 0:39 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/a:/b,upperdir=/u,workdir=/w\n"))
	f.Add([]byte("39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"))
	f.Add([]byte("1 2 0:1 / / rw - overlay overlay rw,lowerdir+=/a\\054b,upperdir=/u\\040x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseCgroupMounts(data)
		o, ok := rootOverlay(data)
		if ok && (!strings.HasPrefix(o.upper, "/") || len(o.lowers) == 0) {
			t.Fatalf("bad overlay accepted: %+v", o)
		}
	})
}

func TestRootOverlay(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		upper  string
		lowers []string
		ok     bool
	}{
		{"docker", "72 48 0:39 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work\n",
			"/var/lib/docker/overlay2/x/diff", []string{"/var/lib/docker/overlay2/l/A", "/var/lib/docker/overlay2/l/B"}, true},
		{"new mount api", "1 2 0:1 / / rw - overlay overlay rw,lowerdir+=/l1,lowerdir+=/l2,upperdir=/u,workdir=/w\n", "/u", []string{"/l1", "/l2"}, true},
		{"escaped", "1 2 0:1 / / rw - overlay overlay rw,lowerdir=/a\\040b,upperdir=/u\\054v\n", "/u,v", []string{"/a b"}, true},
		{"relative lowers", "1 2 0:1 / / rw - overlay overlay rw,lowerdir=l/A,upperdir=/u\n", "", nil, false},
		{"not root", "1 2 0:1 / /mnt rw - overlay overlay rw,lowerdir=/a,upperdir=/u\n", "", nil, false},
		{"ext4 root", "1 2 0:1 / / rw - ext4 /dev/sda1 rw\n", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := rootOverlay([]byte(tt.in))
			if ok != tt.ok || o.upper != tt.upper || strings.Join(o.lowers, ":") != strings.Join(tt.lowers, ":") {
				t.Errorf("rootOverlay = %+v, %v; want %q %q %v", o, ok, tt.upper, tt.lowers, tt.ok)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	st, err := parseStatus([]byte("Name:\tsleep\nPPid:\t12\nUid:\t1000\t1000\t1000\t1000\nNSpid:\t4242\t7\n"))
	if err != nil || st.ppid != 12 || st.uid != 1000 || st.nspid != 7 {
		t.Errorf("parseStatus = %+v, %v", st, err)
	}
	for _, bad := range []string{"", "PPid:\tx\nUid:\t0\n", "PPid:\t1\n"} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) succeeded", bad)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Name:\tsleep\nPPid:\t12\nUid:\t1000\t1000\t1000\t1000\nNSpid:\t4242\t7\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStatus(data)
		if err == nil && (st.ppid < 0 || st.uid < 0) {
			t.Fatalf("negative ids accepted: %+v", st)
		}
	})
}

func TestParseStartTime(t *testing.T) {
	const stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100 18446744073709551615"
	got, err := parseStartTime([]byte(stat))
	if err != nil || got != 123456 {
		t.Errorf("parseStartTime = %d, %v; want 123456", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1", "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20"} {
		if _, err := parseStartTime([]byte(bad)); err == nil {
			t.Errorf("parseStartTime(%q) succeeded", bad)
		}
	}
}

func FuzzParseStartTime(f *testing.F) {
	f.Add([]byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100"))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = parseStartTime(data) })
}
