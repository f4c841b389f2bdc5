//! Finding this process's own cgroup directories from `/proc/self/mountinfo`
//! and `/proc/self/cgroup`.
//!
//! Pure text parsing, so it is unit-tested with the real files of a hybrid
//! host (v1 controllers plus an empty v2 hierarchy) and of a pure v2 host.
//! Run cgroups are created *below* our own cgroup, never at the hierarchy's
//! root: limits set on us by whoever started us keep applying to the runs.

use std::path::{Path, PathBuf};

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy is at the mount point (`/` normally; a
    /// sub-path when a container mounts only its own part).
    pub root: String,
    /// `None` for cgroup v2; the controllers for a v1 hierarchy.
    pub v1_controllers: Option<Vec<String>>,
}

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    /// Controllers of the hierarchy; empty for the v2 line (`0::/path`).
    pub controllers: Vec<String>,
    /// Our cgroup's path inside that hierarchy.
    pub path: String,
}

/// The cgroup hierarchies in a mountinfo text.
pub(crate) fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    mountinfo.lines().filter_map(parse_mount_line).collect()
}

fn parse_mount_line(line: &str) -> Option<Hierarchy> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let _source = right.next()?;
    let super_options = right.next().unwrap_or("");
    let root = (*left.get(3)?).to_owned();
    let mount_point = PathBuf::from(unescape(left.get(4)?));
    let v1_controllers = match fstype {
        "cgroup2" => None,
        "cgroup" => Some(
            super_options
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                .map(str::to_owned)
                .collect(),
        ),
        _ => return None,
    };
    Some(Hierarchy {
        mount_point,
        root,
        v1_controllers,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = (bytes[i] == b'\\')
            .then(|| bytes.get(i + 1..i + 4))
            .flatten()
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if let Some(value) = octal {
            out.push(value);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of a `/proc/self/cgroup` text.
pub(crate) fn memberships(proc_cgroup: &str) -> Vec<Membership> {
    proc_cgroup
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// Our own directory in the v2 hierarchy, if one is mounted.
pub(crate) fn own_v2_dir(hierarchies: &[Hierarchy], memberships: &[Membership]) -> Option<PathBuf> {
    let mount = hierarchies.iter().find(|h| h.v1_controllers.is_none())?;
    let member = memberships.iter().find(|m| m.controllers.is_empty())?;
    join_under(mount, &member.path)
}

/// Our own directory in the v1 hierarchy holding `controller`.
pub(crate) fn own_v1_dir(
    hierarchies: &[Hierarchy],
    memberships: &[Membership],
    controller: &str,
) -> Option<PathBuf> {
    let has = |list: &[String]| list.iter().any(|c| c == controller);
    let mount = hierarchies
        .iter()
        .find(|h| h.v1_controllers.as_deref().is_some_and(has))?;
    let member = memberships.iter().find(|m| has(&m.controllers))?;
    join_under(mount, &member.path)
}

/// `path` (relative to the hierarchy's root) as a directory under the mount,
/// or `None` when our cgroup is outside what is mounted.
fn join_under(mount: &Hierarchy, path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    if rest.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if rest.is_empty() {
        mount.mount_point.clone()
    } else {
        Path::new(&mount.mount_point).join(rest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/6ed1
1:cpu:/
0::/
";

    #[test]
    fn finds_v1_directories_on_a_hybrid_host() {
        let h = hierarchies(HYBRID_MOUNTS);
        let m = memberships(HYBRID_SELF);
        assert_eq!(
            own_v1_dir(&h, &m, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/6ed1"))
        );
        assert_eq!(
            own_v1_dir(&h, &m, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(own_v1_dir(&h, &m, "cpuacct"), None);
        assert_eq!(
            own_v2_dir(&h, &m),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn named_hierarchies_are_not_controllers() {
        let h = hierarchies(HYBRID_MOUNTS);
        let systemd = h.iter().find(|h| h.mount_point.ends_with("systemd"));
        assert_eq!(systemd.and_then(|h| h.v1_controllers.clone()), Some(vec![]));
    }

    #[test]
    fn finds_the_v2_directory_on_a_pure_v2_host() {
        let h = hierarchies("30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        let m = memberships("0::/system.slice/ensemble.service\n");
        assert_eq!(
            own_v2_dir(&h, &m),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/ensemble.service"
            ))
        );
    }

    #[test]
    fn a_container_mount_of_a_sub_tree_is_followed() {
        let h = hierarchies("30 24 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            own_v2_dir(&h, &memberships("0::/docker/abc/app\n")),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert_eq!(own_v2_dir(&h, &memberships("0::/docker/abcd\n")), None);
        assert_eq!(own_v2_dir(&h, &memberships("0::/docker/abc/../x\n")), None);
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
    }
}
