/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Minimal kernel type declarations for mamori's exec monitor.
 *
 * Only the fields the program reads are declared. Every struct carries
 * preserve_access_index, so clang records CO-RE relocations and the loader
 * (cilium/ebpf) fixes up field offsets against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux). Field order and padding here do not matter.
 */
#ifndef MAMORI_TYPES_H
#define MAMORI_TYPES_H

#include <linux/types.h>
#include <linux/bpf.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

/* The array length is irrelevant for CO-RE: only the element offset is
 * relocated, the index comes from the kernel's enum cgroup_subsys_id. */
struct css_set {
	struct cgroup_subsys_state *subsys[1];
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
};

struct linux_binprm {
	const char *filename;
};

#pragma clang attribute pop

/* Only the enumerator the program needs; its value is relocated. */
enum cgroup_subsys_id {
	pids_cgrp_id = 0,
};

#endif
