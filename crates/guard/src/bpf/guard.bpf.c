// BPF LSM hooks that deny every process but the agent (or mamori's own
// binary) any change to, and any open of, entries of protected directories.
//
// Every open and every directory operation on the machine runs these hooks,
// so each one first looks its directory inode up in `dirs` and returns at
// once when it is not there. Several loaded copies (one per Guard) each see
// only their own `dirs`.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

// The kernel lets only GPL-compatible programs use the helpers called here;
// "Dual MIT/GPL" is that, and MIT is within the crate's own licence.
char LICENSE[] SEC("license") = "Dual MIT/GPL";

// GUARD_VERIFY builds the same programs as raw tracepoints: kernels that
// refuse LSM programs (no BPF trampolines) still run the verifier and the
// CO-RE relocations on them, which is what the crate's unit test checks.
#ifdef GUARD_VERIFY
#define HOOK(name) SEC("raw_tp/" #name)
#else
#define HOOK(name) SEC("lsm/" #name)
#endif

#define EPERM 1
#define NAME_LEN 256

// Only the fields read here; CO-RE finds their offsets in this kernel's BTF.
struct super_block {
	__u32 s_dev;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
} __attribute__((preserve_access_index));

struct path {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct task_struct {
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

// Must match `Key` in src/loaded.rs. `dev` is the kernel's encoding of
// sb->s_dev (major << 20 | minor), not userspace's st_dev.
struct key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

// Must match `Op` numbering in src/loaded.rs.
enum op {
	OP_OPEN = 1,
	OP_CREATE,
	OP_MKDIR,
	OP_MKNOD,
	OP_SYMLINK,
	OP_LINK,
	OP_UNLINK,
	OP_RMDIR,
	OP_RENAME,
	OP_SETATTR,
	OP_XATTR,
};

// Must match `RawDenial` in src/loaded.rs.
struct denial {
	__u32 tgid;
	__u32 tid;
	__u32 op;
	__u32 pad;
	struct key dir;
	char comm[16];
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct key);
	__type(value, __u8);
} dirs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} denials SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

// Set by the loader before load; never written here.
const volatile __u32 allow_tgid = 0;
const volatile __u32 allow_exe_set = 0;
const volatile __u32 allow_exe_dev = 0;
const volatile __u64 allow_exe_ino = 0;

static __always_inline struct key inode_key(struct inode *inode)
{
	struct key k = {};

	if (inode) {
		k.ino = BPF_CORE_READ(inode, i_ino);
		k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	}
	return k;
}

// Fills `out` and returns 1 when `inode` is a protected directory.
static __always_inline int protected_inode(struct inode *inode, struct key *out)
{
	if (!inode)
		return 0;
	*out = inode_key(inode);
	return bpf_map_lookup_elem(&dirs, out) != 0;
}

static __always_inline int protected_parent(struct dentry *dentry, struct key *out)
{
	return protected_inode(BPF_CORE_READ(dentry, d_parent, d_inode), out);
}

static __always_inline int protected_self(struct dentry *dentry, struct key *out)
{
	return protected_inode(BPF_CORE_READ(dentry, d_inode), out);
}

static __always_inline int allowed(void)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == allow_tgid)
		return 1;
	if (!allow_exe_set)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe)
		return 0;
	struct key k = inode_key(BPF_CORE_READ(exe, f_inode));
	return k.ino == allow_exe_ino && k.dev == allow_exe_dev;
}

// Called only once a protected directory is involved: the slow path.
static __always_inline int deny(enum op op, struct key *dir, struct dentry *entry)
{
	if (allowed())
		return 0;

	struct denial *d = bpf_ringbuf_reserve(&denials, sizeof(*d), 0);
	if (!d) {
		__u32 zero = 0;
		__u64 *count = bpf_map_lookup_elem(&dropped, &zero);
		if (count)
			__sync_fetch_and_add(count, 1);
		return -EPERM;
	}
	__u64 id = bpf_get_current_pid_tgid();
	d->tgid = id >> 32;
	d->tid = (__u32)id;
	d->op = op;
	d->pad = 0;
	d->dir = *dir;
	bpf_get_current_comm(d->comm, sizeof(d->comm));
	const unsigned char *name = BPF_CORE_READ(entry, d_name.name);
	if (bpf_probe_read_kernel_str(d->name, sizeof(d->name), name) < 0)
		d->name[0] = 0;
	bpf_ringbuf_submit(d, 0);
	return -EPERM;
}

HOOK(file_open)
int BPF_PROG(file_open, struct file *file, int ret)
{
	struct key k;
	struct dentry *dentry;

	if (ret)
		return ret;
	dentry = BPF_CORE_READ(file, f_path.dentry);
	// The path's dentry, not the inode: a pin (hard link in the vault) opened
	// through its owner's own path is the owner's business.
	if (protected_parent(dentry, &k) || protected_self(dentry, &k))
		return deny(OP_OPEN, &k, dentry);
	return 0;
}

static __always_inline int in_dir(enum op op, struct inode *dir, struct dentry *dentry)
{
	struct key k;

	if (protected_inode(dir, &k))
		return deny(op, &k, dentry);
	return 0;
}

HOOK(inode_create)
int BPF_PROG(inode_create, struct inode *dir, struct dentry *dentry, __u16 mode, int ret)
{
	return ret ? ret : in_dir(OP_CREATE, dir, dentry);
}

HOOK(inode_mkdir)
int BPF_PROG(inode_mkdir, struct inode *dir, struct dentry *dentry, __u16 mode, int ret)
{
	return ret ? ret : in_dir(OP_MKDIR, dir, dentry);
}

HOOK(inode_mknod)
int BPF_PROG(inode_mknod, struct inode *dir, struct dentry *dentry, __u16 mode, __u32 dev, int ret)
{
	return ret ? ret : in_dir(OP_MKNOD, dir, dentry);
}

HOOK(inode_symlink)
int BPF_PROG(inode_symlink, struct inode *dir, struct dentry *dentry, const char *old_name, int ret)
{
	return ret ? ret : in_dir(OP_SYMLINK, dir, dentry);
}

HOOK(inode_unlink)
int BPF_PROG(inode_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : in_dir(OP_UNLINK, dir, dentry);
}

HOOK(inode_link)
int BPF_PROG(inode_link, struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry, int ret)
{
	struct key k;

	if (ret)
		return ret;
	if (protected_parent(old_dentry, &k))
		return deny(OP_LINK, &k, old_dentry);
	return in_dir(OP_LINK, dir, new_dentry);
}

HOOK(inode_rmdir)
int BPF_PROG(inode_rmdir, struct inode *dir, struct dentry *dentry, int ret)
{
	struct key k;

	if (ret)
		return ret;
	if (protected_inode(dir, &k) || protected_self(dentry, &k))
		return deny(OP_RMDIR, &k, dentry);
	return 0;
}

HOOK(inode_rename)
int BPF_PROG(inode_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, int ret)
{
	struct key k;

	if (ret)
		return ret;
	if (protected_inode(old_dir, &k) || protected_self(old_dentry, &k))
		return deny(OP_RENAME, &k, old_dentry);
	// Renaming over an (empty) protected directory would replace it.
	if (protected_inode(new_dir, &k) || protected_self(new_dentry, &k))
		return deny(OP_RENAME, &k, new_dentry);
	return 0;
}

// Attribute changes on D itself count too: a chmod or chown of the vault
// directory would open it to everyone.
static __always_inline int on_entry(enum op op, struct dentry *dentry)
{
	struct key k;

	if (protected_parent(dentry, &k) || protected_self(dentry, &k))
		return deny(op, &k, dentry);
	return 0;
}

HOOK(inode_setattr)
int BPF_PROG(inode_setattr, void *idmap, struct dentry *dentry, void *attr, int ret)
{
	return ret ? ret : on_entry(OP_SETATTR, dentry);
}

HOOK(inode_setxattr)
int BPF_PROG(inode_setxattr, void *idmap, struct dentry *dentry, const char *name, const void *value,
	     __u64 size, int flags, int ret)
{
	return ret ? ret : on_entry(OP_XATTR, dentry);
}

HOOK(inode_removexattr)
int BPF_PROG(inode_removexattr, void *idmap, struct dentry *dentry, const char *name, int ret)
{
	return ret ? ret : on_entry(OP_XATTR, dentry);
}

// POSIX ACLs no longer go through the xattr hooks (since 6.2).
HOOK(inode_set_acl)
int BPF_PROG(inode_set_acl, void *idmap, struct dentry *dentry, const char *acl_name, void *kacl, int ret)
{
	return ret ? ret : on_entry(OP_XATTR, dentry);
}

HOOK(inode_remove_acl)
int BPF_PROG(inode_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name, int ret)
{
	return ret ? ret : on_entry(OP_XATTR, dentry);
}
