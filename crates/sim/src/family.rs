//! The families: each one is a plan, a combination of independent behaviours.

use std::time::Duration;

use crate::keystream::CipherKind;

/// One simulated ransomware behaviour.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    /// Which real families behave this way.
    pub summary: &'static str,
    pub(crate) plan: Plan,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub method: Method,
    pub span: Span,
    pub cipher: CipherKind,
    pub rename: Rename,
    pub notes: Notes,
    pub drive: Drive,
    /// Appends a 512-byte random "key blob", as families that store the
    /// RSA-wrapped file key at the end do.
    pub footer: bool,
    /// Pause after each file unless the caller overrides it.
    pub delay: Option<Duration>,
}

/// How the ciphertext reaches the disk.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    /// Read and write back through one read-write descriptor.
    InPlace,
    /// Write `name.<ext>` next to the original, then unlink the original.
    NewThenDelete(Ext),
    /// Through a shared writable mapping, then msync.
    Mmap,
    /// Read everything, reopen with `O_TRUNC`, write.
    Truncate,
    /// Overwrite with the Base64 text of the ciphertext.
    Base64,
    /// In place, but the open, size query, reads, writes, fsync, close and
    /// renames are all io_uring submissions instead of system calls.
    IoUring,
    /// Read everything, reopen with `O_TRUNC`, write a gzip header and then
    /// the ciphertext: a recognised format whose end nothing checks.
    Disguise,
    /// Overwrite every byte with zeros, in place: destruction, no cipher.
    Wipe,
    /// A password-protected archive `name.7z` or `name.zip` made by the real
    /// `7z` or `zip` (alternating, or whichever is installed), then unlink
    /// the original.
    Archive,
}

/// Which bytes get encrypted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Span {
    Whole,
    /// 1 MiB of every 10 MiB for files of 10 MiB or more, else the first 4 MiB.
    Intermittent,
    /// Everything after a header of 16..=256 bytes.
    AfterHeader,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Rename {
    Keep,
    Before(Ext),
    After(Ext),
    /// Every file of the target renamed before the first is opened.
    AllFirst(Ext),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Ext {
    Fixed(&'static str),
    /// Nine random alphanumerics drawn once per run, as LockBit 3.0 does.
    Random9,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notes {
    None,
    /// Every folder of the tree gets its note before the first file is touched.
    First,
    /// A folder gets its note when the first file in it is reached.
    During,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Drive {
    Sequential,
    Threads(usize),
    /// One child process (fork/exec of the current executable) per file.
    ProcessPerFile,
    /// The same, each child in a session of its own (`setsid`).
    SessionPerFile,
}

pub(crate) const BASE: Plan = Plan {
    method: Method::InPlace,
    span: Span::Whole,
    cipher: CipherKind::ChaCha20,
    rename: Rename::Keep,
    notes: Notes::None,
    drive: Drive::Sequential,
    footer: false,
    delay: None,
};

static FAMILIES: &[Family] = &[
    Family {
        name: "overwrite",
        summary: "In-place overwrite through one read-write handle, then a random 9-character extension and a key \
                  footer (LockBit 3.0, Babuk).",
        plan: Plan { rename: Rename::After(Ext::Random9), footer: true, ..BASE },
    },
    Family {
        name: "new-then-delete",
        summary:
            "Writes an encrypted copy name.ext.enc and deletes the original (WannaCry, CryptoLocker-era families).",
        plan: Plan { method: Method::NewThenDelete(Ext::Fixed("enc")), footer: true, ..BASE },
    },
    Family {
        name: "rename-first",
        summary: "Renames each file to its new extension before encrypting it in place, so the rename comes before \
                  any write (Phobos/Dharma-style strains).",
        plan: Plan { rename: Rename::Before(Ext::Fixed("crypted")), ..BASE },
    },
    Family {
        name: "rename-all-first",
        summary: "Renames every file of the tree to its new extension without opening any, then encrypts the renamed \
                  files in place (strains that mark the whole share first, so nothing is opened until every name \
                  has changed).",
        plan: Plan { rename: Rename::AllFirst(Ext::Fixed("locked")), ..BASE },
    },
    Family {
        name: "intermittent",
        summary: "Encrypts 1 MiB of every 10 MiB of large files and the first 4 MiB of others, in place \
                  (BlackCat/ALPHV, LockFile, Play, Black Basta).",
        plan: Plan { span: Span::Intermittent, rename: Rename::After(Ext::Fixed("alphv")), ..BASE },
    },
    Family {
        name: "process-per-file",
        summary: "Spawns a fresh child process for every file so no single process does much (short-lived worker \
                  processes of Go and Python lockers, fork-per-file shell scripts).",
        plan: Plan { drive: Drive::ProcessPerFile, rename: Rename::After(Ext::Fixed("pwned")), ..BASE },
    },
    Family {
        name: "setsid",
        summary: "Starts each file's child in a new session of its own (setsid), so no process tree links the \
                  children to a common session leader (lockers that detach every worker).",
        plan: Plan { drive: Drive::SessionPerFile, rename: Rename::After(Ext::Fixed("sess")), ..BASE },
    },
    Family {
        name: "threads",
        summary: "Eight threads encrypting in parallel (Conti, LockBit, Hive).",
        plan: Plan { drive: Drive::Threads(8), rename: Rename::After(Ext::Fixed("conti")), ..BASE },
    },
    Family {
        name: "slow",
        summary: "One file every two seconds to stay under rate thresholds (low-and-slow strains, throttled \
                  LockFile-style runs).",
        plan: Plan { delay: Some(Duration::from_secs(2)), ..BASE },
    },
    Family {
        name: "base64",
        summary: "Replaces content with the Base64 text of its ciphertext, defeating entropy checks (entropy-evasion \
                  variants described in ransomware research).",
        plan: Plan { method: Method::Base64, ..BASE },
    },
    Family {
        name: "header-keep",
        summary: "Keeps the first 16-256 bytes so magic numbers still match and encrypts the rest in place (strains \
                  that spare file headers to fool type checks).",
        plan: Plan { span: Span::AfterHeader, ..BASE },
    },
    Family {
        name: "disguise",
        summary: "Writes each file's ciphertext behind a gzip header, so that it still reads as a recognised, \
                  compressed format (strains that dress their output as another file type to pass type checks).",
        plan: Plan { method: Method::Disguise, ..BASE },
    },
    Family {
        name: "mmap",
        summary: "Encrypts through a shared writable memory mapping and msync, never calling write (LockFile, \
                  Maze-style memory-mapped I/O).",
        plan: Plan { method: Method::Mmap, ..BASE },
    },
    Family {
        name: "truncate",
        summary: "Reads the file, reopens it with O_TRUNC and writes the ciphertext (simple Linux and ESXi lockers).",
        plan: Plan { method: Method::Truncate, footer: true, ..BASE },
    },
    Family {
        name: "wiper",
        summary: "Overwrites every byte of each file with zeros, in place: destruction dressed as ransomware, with \
                  nothing to decrypt (NotPetya, WhisperGate, AcidRain-style wipers).",
        plan: Plan { method: Method::Wipe, ..BASE },
    },
    Family {
        name: "archiver",
        summary: "Puts each file into a password-protected archive with the real 7z (-mhe=on, encrypted headers) or \
                  zip and deletes the original (Qlocker on QNAP NAS boxes, 7-Zip-based lockers).",
        plan: Plan { method: Method::Archive, ..BASE },
    },
    Family {
        name: "notes-first",
        summary: "Drops the ransom note in every folder before encrypting anything (Conti, Ryuk, REvil).",
        plan: Plan { notes: Notes::First, ..BASE },
    },
    Family {
        name: "notes-during",
        summary: "Drops the ransom note in each folder as encryption reaches it (LockBit, Black Basta).",
        plan: Plan { notes: Notes::During, rename: Rename::After(Ext::Random9), ..BASE },
    },
    Family {
        name: "partial-xor",
        summary: "XORs every byte with one key byte, which keeps entropy unchanged (Xorist and other weak lockers).",
        plan: Plan { cipher: CipherKind::XorByte, ..BASE },
    },
    Family {
        name: "io-uring",
        summary: "Does all of its file I/O through io_uring submissions (open, read, write, fsync, close, rename), \
                  so no write or rename system call names a victim, encrypting intermittently as the fastest \
                  lockers do; io_uring-based evasion, as shown by the 'Curing' rootkit research (ARMO, 2025).",
        plan: Plan {
            method: Method::IoUring,
            span: Span::Intermittent,
            rename: Rename::After(Ext::Fixed("uring")),
            ..BASE
        },
    },
];

/// Every family [`run`](crate::run) accepts.
pub fn families() -> &'static [Family] {
    FAMILIES
}

pub(crate) fn find(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}
