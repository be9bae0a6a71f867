//! The network `ruleopt simulate` runs and the rule `ruleopt search` searches when no
//! file is given, and the files they import, compiled into the binary so the main job
//! needs nothing but the executable.
//! Names are the files' paths in the repository; imports resolve against them.

/// Name of the bundled network file.
pub const ROOT: &str = "rules/networks/lif_network.rule";

/// Name of the rule `ruleopt search` searches when no file is given.
pub const SEARCH_ROOT: &str = "rules/search/reward_driven.rule";

/// (name, text) of every bundled file: the network and what it imports.
pub const FILES: &[(&str, &str)] = &[
    (ROOT, include_str!("../../rules/networks/lif_network.rule")),
    (
        "rules/neurons/lif.rule",
        include_str!("../../rules/neurons/lif.rule"),
    ),
    (
        "rules/neurons/lif_zero.rule",
        include_str!("../../rules/neurons/lif_zero.rule"),
    ),
    (
        "rules/neurons/leaky_readout.rule",
        include_str!("../../rules/neurons/leaky_readout.rule"),
    ),
    (
        SEARCH_ROOT,
        include_str!("../../rules/search/reward_driven.rule"),
    ),
    (
        "rules/synapses/static.rule",
        include_str!("../../rules/synapses/static.rule"),
    ),
];

/// The text of a bundled file.
pub fn get(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, text)| text)
}
