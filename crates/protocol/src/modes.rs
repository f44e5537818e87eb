//! Enumerations shared by several frames: permission modes, toolsets, stop reasons.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Permission mode of a runtime scope (docs/protocol.md §3.9). Closed: an unknown mode is an error,
/// never a more permissive mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DevicePermissionMode {
    /// Rules and defaults: read-only tools auto-allowed, everything else asks.
    #[serde(rename = "standard")]
    Standard,
    /// As `standard`, plus file-editing tools auto-allowed.
    #[serde(rename = "acceptEdits")]
    AcceptEdits,
    /// Everything allowed unless a deny rule matches. The default of a scope that never set one.
    #[serde(rename = "unrestricted")]
    Unrestricted,
    /// Every tool asks.
    #[serde(rename = "strict")]
    Strict,
}

impl DevicePermissionMode {
    /// Every mode, in wire order.
    pub const ALL: [Self; 4] = [Self::Standard, Self::AcceptEdits, Self::Unrestricted, Self::Strict];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::AcceptEdits => "acceptEdits",
            Self::Unrestricted => "unrestricted",
            Self::Strict => "strict",
        }
    }

    /// The mode with this wire spelling (legacy aliases are not accepted).
    pub fn from_wire(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// A permission mode as `change_device_state` accepts it: the four current modes plus the legacy
/// aliases real Letta still migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RequestedPermissionMode {
    /// `standard`.
    #[serde(rename = "standard")]
    Standard,
    /// `acceptEdits`.
    #[serde(rename = "acceptEdits")]
    AcceptEdits,
    /// `unrestricted`.
    #[serde(rename = "unrestricted")]
    Unrestricted,
    /// `strict`.
    #[serde(rename = "strict")]
    Strict,
    /// Legacy alias of `standard`.
    #[serde(rename = "default")]
    LegacyDefault,
    /// Legacy alias of `unrestricted`.
    #[serde(rename = "bypassPermissions")]
    BypassPermissions,
    /// Legacy alias of `unrestricted`.
    #[serde(rename = "fullAccess")]
    FullAccess,
}

impl RequestedPermissionMode {
    /// The current mode this request selects, with legacy aliases migrated.
    pub fn resolve(self) -> DevicePermissionMode {
        match self {
            Self::Standard | Self::LegacyDefault => DevicePermissionMode::Standard,
            Self::AcceptEdits => DevicePermissionMode::AcceptEdits,
            Self::Unrestricted | Self::BypassPermissions | Self::FullAccess => DevicePermissionMode::Unrestricted,
            Self::Strict => DevicePermissionMode::Strict,
        }
    }
}

open_enum! {
    /// A client toolset preset (docs/protocol.md §6.2).
    pub enum ToolsetName {
        /// OpenAI Codex style tools.
        Codex = "codex",
        /// Codex tools with snake_case names.
        CodexSnake = "codex_snake",
        /// Anthropic style tools (`Bash`, `Read`, `Edit`, …).
        Default = "default",
        /// Gemini style tools.
        Gemini = "gemini",
        /// Gemini tools with snake_case names.
        GeminiSnake = "gemini_snake",
        /// Letta's unified toolset for every model (Letta 0.32.18 and 0.34.12).
        Letta = "letta",
        /// No client tools.
        None = "none",
    }
}

open_enum! {
    /// A toolset preset, or `auto` (derived from the model).
    pub enum ToolsetPreference {
        /// OpenAI Codex style tools.
        Codex = "codex",
        /// Codex tools with snake_case names.
        CodexSnake = "codex_snake",
        /// Anthropic style tools.
        Default = "default",
        /// Gemini style tools.
        Gemini = "gemini",
        /// Gemini tools with snake_case names.
        GeminiSnake = "gemini_snake",
        /// Letta's unified toolset for every model (Letta 0.32.18 and 0.34.12).
        Letta = "letta",
        /// No client tools.
        None = "none",
        /// Chosen from the model: OpenAI models get `codex`, others `default`.
        Auto = "auto",
    }
}

open_enum! {
    /// Why a run (or a turn) stopped (`StopReasonType` of the Letta API).
    pub enum StopReason {
        /// The model finished its reply.
        EndTurn = "end_turn",
        /// An error ended the run.
        Error = "error",
        /// The model provider failed.
        LlmApiError = "llm_api_error",
        /// The model's response could not be used.
        InvalidLlmResponse = "invalid_llm_response",
        /// The model called a tool incorrectly.
        InvalidToolCall = "invalid_tool_call",
        /// The step limit was reached.
        MaxSteps = "max_steps",
        /// The token limit was reached.
        MaxTokensExceeded = "max_tokens_exceeded",
        /// The model made no tool call where one was required.
        NoToolCall = "no_tool_call",
        /// A tool rule ended the run.
        ToolRule = "tool_rule",
        /// The run was cancelled.
        Cancelled = "cancelled",
        /// The account ran out of credits.
        InsufficientCredits = "insufficient_credits",
        /// The run paused for client-side tool approval (never a turn's stop reason).
        RequiresApproval = "requires_approval",
        /// The system prompt alone overflows the context window.
        ContextWindowOverflowInSystemPrompt = "context_window_overflow_in_system_prompt",
    }
}

open_enum! {
    /// Which backend an App Server runs agents on.
    pub enum Backend {
        /// Agents run in-process against model providers.
        Local = "local",
        /// Agents run on the Letta API.
        Api = "api",
    }
}
