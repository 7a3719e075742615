// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * mamori exec monitor.
 *
 * Licence: "Dual MIT/GPL". The kernel only lets GPL-compatible programs
 * call bpf_probe_read_* and bpf_send_signal, which this program needs.
 *
 * One program, attached to the sched_process_exec tracepoint (as tp_btf,
 * or as a raw tracepoint where tp_btf cannot load), runs after every
 * successful execve on the host. It first computes the exec'ing task's
 * cgroup ids and looks them up in the "targets" hash map; tasks outside
 * the watched containers leave right there, before any ring buffer space
 * is reserved. For targets it fills an exec_event in the "events" ring
 * buffer and, if the target's action says so, kills the task with SIGKILL.
 *
 * Two cgroup ids are matched, so that one program works on every host:
 *  - the cgroup v1 id of the task's "pids" hierarchy
 *    (task->cgroups->subsys[pids_cgrp_id]->cgroup->kn->id): Docker with
 *    the cgroupfs driver on a cgroup v1 or hybrid host;
 *  - the cgroup v2 id (bpf_get_current_cgroup_id): unified hosts.
 * Both equal the inode number of the cgroup's directory, which is what user
 * space puts in the map.
 */
#include "mamori_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define COMM_LEN 16
#define FILENAME_LEN 256
#define ARGS_LEN 256
#define SIGKILL 9

#define ACTION_REPORT 0
#define ACTION_KILL 1

#define FLAG_KILLED 1
#define FLAG_ARGS_TRUNCATED 2

#define STAT_EVENTS 0
#define STAT_DROPS 1
#define STAT_MAX 2

/* Watched cgroup ids (v1 pids or v2) -> action. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u32);
} targets SEC(".maps");

/* Ring buffer of exec_event records; user space may resize it. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Per-CPU counters: submitted events and ring buffer reserve failures. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/*
 * Set by the loader: once this many bytes are pending in the ring buffer
 * the reader is woken; below it events are submitted without a wakeup and
 * the reader collects them on its periodic poll. Zero means the kernel's
 * default (wake the reader whenever it has caught up). Batching keeps the
 * reader's wakeup and context switch off the exec path of every event.
 */
const volatile __u64 wakeup_bytes = 0;

/* Keep in sync with decodeEvent in event.go (little-endian, packed). */
struct exec_event {
	__u64 ktime_ns;
	__u64 cgroup_id;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 mntns;
	__u32 action;
	__u32 flags;
	__u32 args_len;
	char comm[COMM_LEN];
	char filename[FILENAME_LEN];
	char args[ARGS_LEN];
};

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &key);
	if (v)
		*v += 1;
}

static __always_inline __u64 pids_v1_id(struct task_struct *task)
{
	struct cgroup_subsys_state *css = 0;
	struct css_set *cset;
	int idx;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id))
		return 0;
	idx = bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id);
	cset = BPF_CORE_READ(task, cgroups);
	if (!cset)
		return 0;
	if (bpf_core_read(&css, sizeof(css), &cset->subsys[idx]))
		return 0;
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

static __always_inline int on_exec(struct task_struct *task, struct linux_binprm *bprm)
{
	__u64 cgid = pids_v1_id(task);
	__u32 *actionp = 0;
	struct exec_event *e;
	unsigned long start, end;
	__u64 n, avail, flags;
	__u32 action;

	if (cgid)
		actionp = bpf_map_lookup_elem(&targets, &cgid);
	if (!actionp) {
		cgid = bpf_get_current_cgroup_id();
		actionp = bpf_map_lookup_elem(&targets, &cgid);
		if (!actionp)
			return 0;
	}
	action = *actionp;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_DROPS);
		if (action == ACTION_KILL)
			bpf_send_signal(SIGKILL);
		return 0;
	}

	e->ktime_ns = bpf_ktime_get_ns();
	e->cgroup_id = cgid;
	e->pid = BPF_CORE_READ(task, pid);
	e->tgid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->action = action;
	e->flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
				      BPF_CORE_READ(bprm, filename)) < 0)
		e->filename[0] = 0;

	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	n = 0;
	if (end > start) {
		n = end - start;
		if (n > ARGS_LEN) {
			n = ARGS_LEN;
			e->flags |= FLAG_ARGS_TRUNCATED;
		}
		if (bpf_probe_read_user(e->args, n & (2 * ARGS_LEN - 1), (void *)start))
			n = 0;
	}
	e->args_len = n;

	if (action == ACTION_KILL && bpf_send_signal(SIGKILL) == 0)
		e->flags |= FLAG_KILLED;

	flags = 0;
	if (wakeup_bytes) {
		/* Wake the reader only when the pending data crosses the mark. */
		avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = (avail >= wakeup_bytes && avail < wakeup_bytes + sizeof(*e) + 8) ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	count(STAT_EVENTS);
	bpf_ringbuf_submit(e, flags);
	return 0;
}

/* Preferred attachment: BTF-typed tracepoint arguments. */
SEC("tp_btf/sched_process_exec")
int mamori_exec_btf(__u64 *ctx)
{
	return on_exec((struct task_struct *)ctx[0], (struct linux_binprm *)ctx[2]);
}

/* Fallback attachment for kernels where tp_btf does not load. */
SEC("raw_tracepoint/sched_process_exec")
int mamori_exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exec((struct task_struct *)ctx->args[0], (struct linux_binprm *)ctx->args[2]);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
