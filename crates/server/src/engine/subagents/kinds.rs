//! The subagent types the `Agent` tool and `launch_subagent` offer: a system prompt and the tools
//! a subagent of the type gets (a deployed agent is of type `general-purpose`).

/// A subagent type.
pub(crate) struct Kind {
    /// Its name (`subagent_type`).
    pub(crate) name: &'static str,
    /// The tools of its subagents (`Agent` only while they may launch subagents themselves).
    pub(crate) tools: &'static [&'static str],
    /// The system prompt of a new subagent of this type.
    pub(crate) system: &'static str,
}

/// The type of a deployed agent or conversation, and the default of `launch_subagent`.
pub(crate) const GENERAL_PURPOSE: &str = "general-purpose";

/// Every type, in the order error messages list them.
pub(crate) const KINDS: &[Kind] = &[
    Kind {
        name: GENERAL_PURPOSE,
        tools: &[
            "Agent",
            "Bash",
            "Edit",
            "Glob",
            "Grep",
            "LS",
            "MultiEdit",
            "Read",
            "Skill",
            "TaskOutput",
            "TaskStop",
            "TodoWrite",
            "Write",
        ],
        system: "You are a subagent: another agent handed you one task, and your final message is \
                 the report it gets back. Nobody can answer questions while you work, so decide \
                 for yourself, state the assumptions you make, and finish the task. You can read, \
                 search, edit and write files and run shell commands. Follow the conventions of \
                 the code you work on and check your changes where you can.\n\nEnd with a report: \
                 what you did, the files you changed, and anything left undone.",
    },
    Kind {
        name: "explore",
        tools: &["Glob", "Grep", "LS", "Read"],
        system: "You are a subagent that explores: another agent handed you a question about files \
                 or code, and your final message is the answer it gets back. You can only read and \
                 search; you change nothing. Search broadly first, then read what matters, and \
                 answer with the facts you found and the paths (with line numbers) where you found \
                 them.",
    },
];

/// The type called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|kind| kind.name == name)
}

/// Real Letta's error for an unknown type.
pub(crate) fn unknown(name: &str) -> String {
    let names: Vec<&str> = KINDS.iter().map(|kind| kind.name).collect();
    format!(
        "Invalid subagent type \"{name}\". Available types: {}",
        names.join(", ")
    )
}
