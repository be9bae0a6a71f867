//! The network `ruleopt simulate` runs when no file is given, and the files it imports,
//! compiled into the binary so the main job needs nothing but the executable.

/// Name of the bundled network file (imports resolve against the names below).
pub const ROOT: &str = "rules/networks/lif_network.rule";

/// (name, text) of every bundled file.
pub const FILES: &[(&str, &str)] = &[
    (ROOT, include_str!("../bundled/networks/lif_network.rule")),
    ("rules/neurons/lif.rule", include_str!("../bundled/neurons/lif.rule")),
    ("rules/synapses/static.rule", include_str!("../bundled/synapses/static.rule")),
];

/// The text of a bundled file.
pub fn get(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|&(_, text)| text)
}
