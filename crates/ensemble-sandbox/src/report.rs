//! What the start-up probe found: which isolation layers are active on this
//! host, as one log line and as a serialisable value for `/readyz`.

use serde::{Deserialize, Serialize};

/// The sandbox's state for the start-up log and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReport {
    /// `"bubblewrap"`, `"none-unsafe"` or `"unavailable"`.
    pub mode: String,
    /// Whether runs are accepted.
    pub usable: bool,
    /// Why runs are refused, when they are.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Each layer, in the order they wrap the program.
    pub layers: Vec<Layer>,
}

/// One isolation layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Short name: `namespaces`, `seccomp`, `cgroup`, ….
    pub name: String,
    /// Whether it protects runs on this host.
    pub active: bool,
    /// What exactly is in place, or why it is not.
    pub detail: String,
}

impl Layer {
    pub(crate) fn new(name: &str, active: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            active,
            detail: detail.into(),
        }
    }
}

impl SandboxReport {
    /// One line for the start-up log, e.g. `sandbox bubblewrap: namespaces
    /// on, seccomp on, cgroup on (v1 …), … `.
    pub fn summary(&self) -> String {
        let layers: Vec<String> = self
            .layers
            .iter()
            .map(|l| {
                let state = if l.active { "on" } else { "OFF" };
                format!("{} {state} ({})", l.name, l.detail)
            })
            .collect();
        match &self.error {
            Some(error) => format!("sandbox {}: runs refused: {error}", self.mode),
            None => format!("sandbox {}: {}", self.mode, layers.join("; ")),
        }
    }

    /// Whether the named layer is active.
    pub fn is_active(&self, name: &str) -> bool {
        self.layers.iter().any(|l| l.name == name && l.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_layer() {
        let report = SandboxReport {
            mode: "bubblewrap".into(),
            usable: true,
            error: None,
            layers: vec![
                Layer::new("seccomp", true, "deny-list"),
                Layer::new("cgroup", false, "none usable"),
            ],
        };
        assert_eq!(
            report.summary(),
            "sandbox bubblewrap: seccomp on (deny-list); cgroup OFF (none usable)"
        );
        assert!(report.is_active("seccomp"));
        assert!(!report.is_active("cgroup"));
    }
}
