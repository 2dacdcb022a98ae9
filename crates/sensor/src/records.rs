//! Parsing of the byte stream `read(2)` returns from a fanotify group: event
//! metadata and, for FID groups, the directory-handle-plus-name records.
//! Pure; the layouts are those of `<linux/fanotify.h>`.

use crate::handles::HandleKey;

const META_LEN: usize = 24;

/// One event's fixed part and its trailing info records.
#[derive(Debug, PartialEq)]
pub struct RawEvent<'a> {
    pub mask: u64,
    /// An open fd for content groups, `FAN_NOFD` for FID groups and overflow.
    pub fd: i32,
    /// A thread id when the group reports tids, else a process id.
    pub pid: i32,
    pub info: &'a [u8],
}

/// Splits a read buffer into events. Stops at a truncated or foreign-version
/// record rather than guessing.
pub fn events(buf: &[u8]) -> impl Iterator<Item = RawEvent<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < META_LEN {
            return None;
        }
        let event_len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        let vers = rest[4];
        let metadata_len = u16::from_ne_bytes(rest[6..8].try_into().ok()?) as usize;
        if vers != libc::FANOTIFY_METADATA_VERSION
            || event_len < META_LEN
            || event_len > rest.len()
            || metadata_len < META_LEN
            || metadata_len > event_len
        {
            tracing::error!(vers, event_len, "malformed fanotify record; dropping the rest of the batch");
            return None;
        }
        let ev = RawEvent {
            mask: u64::from_ne_bytes(rest[8..16].try_into().ok()?),
            fd: i32::from_ne_bytes(rest[16..20].try_into().ok()?),
            pid: i32::from_ne_bytes(rest[20..24].try_into().ok()?),
            info: &rest[metadata_len..event_len],
        };
        rest = &rest[event_len..];
        Some(ev)
    })
}

/// `FAN_EVENT_INFO_TYPE_RANGE` (kernel 6.14+): `{hdr, u32 pad, u64 offset, u64 count}`.
const INFO_TYPE_RANGE: u8 = 6;

/// The (offset, count) of a pre-content event's range record.
pub fn access_range(info: &[u8]) -> Option<(u64, u64)> {
    let mut rest = info;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes(rest[2..4].try_into().ok()?) as usize;
        if len < 4 || len > rest.len() {
            return None;
        }
        if rest[0] == INFO_TYPE_RANGE && len >= 24 {
            let offset = u64::from_ne_bytes(rest[8..16].try_into().ok()?);
            let count = u64::from_ne_bytes(rest[16..24].try_into().ok()?);
            return Some((offset, count));
        }
        rest = &rest[len..];
    }
    None
}

/// A directory handle and an entry name in it, from a `DFID_NAME`,
/// `OLD_DFID_NAME` or `NEW_DFID_NAME` record.
#[derive(Debug, PartialEq)]
pub struct DirEntryRecord {
    pub info_type: u8,
    pub dir: HandleKey,
    pub name: Vec<u8>,
}

/// The directory-entry records of one FID event; other record types (the
/// object's own FID) are skipped.
pub fn dir_entries(info: &[u8]) -> Vec<DirEntryRecord> {
    let wanted = |t: u8| {
        matches!(
            t,
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
        )
    };
    fid_records(info)
        .filter(|(info_type, _, _)| wanted(*info_type))
        .map(|(info_type, dir, tail)| {
            let name = tail.split(|&b| b == 0).next().unwrap_or_default().to_vec();
            DirEntryRecord { info_type, dir, name }
        })
        .collect()
}

/// The handle of the object itself (its `FID` record): with
/// `FAN_REPORT_TARGET_FID`, the entry created, deleted or moved.
pub fn object_handle(info: &[u8]) -> Option<HandleKey> {
    fid_records(info).find(|(info_type, _, _)| *info_type == libc::FAN_EVENT_INFO_TYPE_FID).map(|(_, h, _)| h)
}

/// Every record of one event that holds a file handle: its type, the
/// handle, and what follows the handle (a name, for the entry records).
fn fid_records(mut info: &[u8]) -> impl Iterator<Item = (u8, HandleKey, &[u8])> {
    // header (4) + fsid (8) + handle_bytes (4) + handle_type (4)
    const FIXED: usize = 20;
    std::iter::from_fn(move || loop {
        if info.len() < 4 {
            return None;
        }
        let info_type = info[0];
        let len = u16::from_ne_bytes([info[2], info[3]]) as usize;
        if len < 4 || len > info.len() {
            return None;
        }
        let rec = &info[..len];
        info = &info[len..];
        let holds_handle = matches!(
            info_type,
            libc::FAN_EVENT_INFO_TYPE_FID
                | libc::FAN_EVENT_INFO_TYPE_DFID
                | libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
        );
        if !holds_handle || rec.len() < FIXED {
            continue;
        }
        let fsid = [
            i32::from_ne_bytes(rec[4..8].try_into().expect("4 bytes")),
            i32::from_ne_bytes(rec[8..12].try_into().expect("4 bytes")),
        ];
        let handle_bytes = u32::from_ne_bytes(rec[12..16].try_into().expect("4 bytes")) as usize;
        let handle_type = i32::from_ne_bytes(rec[16..20].try_into().expect("4 bytes"));
        let Some(handle) = rec.get(FIXED..FIXED + handle_bytes) else { continue };
        let key = HandleKey { fsid, handle_type, bytes: handle.to_vec() };
        return Some((info_type, key, &rec[FIXED + handle_bytes..]));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mask: u64, fd: i32, pid: i32, info: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((META_LEN + info.len()) as u32).to_ne_bytes());
        v.push(libc::FANOTIFY_METADATA_VERSION);
        v.push(0);
        v.extend_from_slice(&(META_LEN as u16).to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&fd.to_ne_bytes());
        v.extend_from_slice(&pid.to_ne_bytes());
        v.extend_from_slice(info);
        v
    }

    fn dfid_name(info_type: u8, handle: &[u8], name: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&7i32.to_ne_bytes());
        body.extend_from_slice(&9i32.to_ne_bytes());
        body.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
        body.extend_from_slice(&1i32.to_ne_bytes());
        body.extend_from_slice(handle);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        while (body.len() + 4) % 4 != 0 {
            body.push(0);
        }
        let mut v = vec![info_type, 0];
        v.extend_from_slice(&((body.len() + 4) as u16).to_ne_bytes());
        v.extend_from_slice(&body);
        v
    }

    #[test]
    fn splits_events_and_reads_rename_records() {
        let mut info = dfid_name(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &[1, 2, 3, 4, 5, 6, 7, 8], "a.txt");
        info.extend(dfid_name(libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, &[8, 7, 6, 5, 4, 3, 2, 1], "b.locked"));
        let mut buf = meta(libc::FAN_RENAME, libc::FAN_NOFD, 42, &info);
        buf.extend(meta(libc::FAN_Q_OVERFLOW, libc::FAN_NOFD, 0, &[]));
        let evs: Vec<_> = events(&buf).collect();
        assert_eq!(evs.len(), 2);
        assert_eq!((evs[0].mask, evs[0].pid), (libc::FAN_RENAME, 42));
        assert_eq!(evs[1].mask, libc::FAN_Q_OVERFLOW);
        let recs = dir_entries(evs[0].info);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].info_type, libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME);
        assert_eq!(recs[0].name, b"a.txt");
        assert_eq!(recs[0].dir, HandleKey { fsid: [7, 9], handle_type: 1, bytes: vec![1, 2, 3, 4, 5, 6, 7, 8] });
        assert_eq!(recs[1].name, b"b.locked");
    }

    #[test]
    fn reads_the_handle_of_the_created_entry() {
        let mut info = dfid_name(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, &[1, 2, 3, 4], "new.txt");
        info.extend(dfid_name(libc::FAN_EVENT_INFO_TYPE_FID, &[9, 9, 9, 9, 9, 9, 9, 9], ""));
        let child = HandleKey { fsid: [7, 9], handle_type: 1, bytes: vec![9; 8] };
        assert_eq!(object_handle(&info), Some(child));
        let recs = dir_entries(&info);
        assert_eq!(recs.len(), 1, "the object's own record is not an entry");
        assert_eq!(recs[0].name, b"new.txt");
        // Without FAN_REPORT_TARGET_FID there is no object record.
        assert_eq!(object_handle(&dfid_name(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, &[1, 2, 3, 4], "new.txt")), None);
    }

    #[test]
    fn truncated_buffer_yields_only_whole_events() {
        let mut buf = meta(libc::FAN_CREATE, libc::FAN_NOFD, 1, &[]);
        let whole = buf.len();
        buf.extend(meta(libc::FAN_DELETE, libc::FAN_NOFD, 1, &[]));
        assert_eq!(events(&buf[..whole + 10]).count(), 1);
    }

    #[test]
    fn wrong_version_stops_parsing() {
        let mut buf = meta(libc::FAN_CREATE, libc::FAN_NOFD, 1, &[]);
        buf[4] = 2;
        assert_eq!(events(&buf).count(), 0);
    }

    #[test]
    fn reads_the_range_record() {
        let mut rec = vec![INFO_TYPE_RANGE, 0];
        rec.extend_from_slice(&24u16.to_ne_bytes());
        rec.extend_from_slice(&0u32.to_ne_bytes());
        rec.extend_from_slice(&8192u64.to_ne_bytes());
        rec.extend_from_slice(&4096u64.to_ne_bytes());
        // Another record first, then the range.
        let mut info = vec![99, 0, 8, 0, 0, 0, 0, 0];
        info.extend_from_slice(&rec);
        assert_eq!(access_range(&info), Some((8192, 4096)));
        assert_eq!(access_range(&rec[..20]), None);
        assert_eq!(access_range(&[]), None);
    }
}
