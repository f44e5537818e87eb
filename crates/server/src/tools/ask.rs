//! `AskUserQuestion`, in Letta's two versions: the 0.32.18 tool that asks through a
//! `control_request` (the controller fills in `answers`), and 0.34.12's asynchronous one a client
//! opts into with `client_preferences`, which posts the questions and returns a receipt at once;
//! the answers arrive later as a user message (docs/protocol.md §8.4).

use letta_app_server_protocol::JsonObject;
use serde_json::{Value, json};

use super::args::{object_schema, required_array, try_arg, type_name};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult};

/// `AskUserQuestion`: asks the user and returns the answers.
pub struct AskUserQuestion;

impl LocalTool for AskUserQuestion {
    fn name(&self) -> &'static str {
        "AskUserQuestion"
    }

    fn description(&self) -> &'static str {
        "Asks the user one or more questions and waits for the answers, to clarify requirements \
         or let them choose between approaches. Give each question 2-4 concise options when \
         possible (the user can still answer freely); set `multiSelect` to allow several choices. \
         Do not fill in `answers`: the user's client does."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "questions": questions_schema(false),
                "answers": {
                    "type": "object",
                    "description": "Filled in by the user's client: question text → answer. Leave unset.",
                    "additionalProperties": true
                }
            }),
            &["questions"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Interactive
    }

    fn run<'a>(&'a self, args: JsonObject, _context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let questions = try_arg!(parse_questions(try_arg!(required_array(&args, "questions")), false));
            let answers = match args.get("answers") {
                None | Some(Value::Null) => None,
                Some(Value::Object(answers)) if answers.is_empty() => None,
                Some(Value::Object(answers)) => Some(answers),
                Some(other) => {
                    return ToolResult::error(format!("`answers` must be an object, got {}.", type_name(other)));
                }
            };
            let Some(answers) = answers else {
                return ToolResult::error(
                    "The user did not answer the questions. Continue without their answers or ask again.",
                );
            };
            // Answers in the order the questions were asked, then any others.
            let mut pairs: Vec<(&str, &Value)> = Vec::new();
            for question in &questions {
                if let Some(answer) = answers.get(*question) {
                    pairs.push((question, answer));
                }
            }
            for (question, answer) in answers {
                if !questions.contains(&question.as_str()) {
                    pairs.push((question, answer));
                }
            }
            let formatted: Vec<String> = pairs
                .iter()
                .map(|(question, answer)| format!("\"{question}\"=\"{}\"", answer_text(answer)))
                .collect();
            ToolResult::ok(format!(
                "User answered: {}. You can now continue with the user's answers in mind.",
                formatted.join(", ")
            ))
        })
    }
}

/// `AskUserQuestionAsync` (Letta 0.34's internal name; the model sees `AskUserQuestion`): posts
/// the questions and returns at once a receipt, `{type: "ask_user_question", version: 2,
/// toolCallId, questions, message}`. Allowed without asking: the user answers later, in an
/// ordinary message whose content is a `<task-notification>` with an
/// `<ask-user-question-response>`.
pub struct AskUserQuestionAsync;

/// What the receipt tells the model. The first two sentences are Letta 0.34's as observed; the
/// rest is this server's.
const POSTED: &str = "Questions posted. Answers or dismissal will arrive later in a task notification. \
     Do not wait or poll for them: continue with work that does not depend on the answers, or end your turn.";

impl LocalTool for AskUserQuestionAsync {
    fn name(&self) -> &'static str {
        "AskUserQuestion"
    }

    fn id(&self) -> &'static str {
        "AskUserQuestionAsync"
    }

    fn description(&self) -> &'static str {
        "Posts one or more questions to the user, to clarify requirements or let them choose \
         between approaches, and returns at once. The answers (or a dismissal) arrive later as a \
         task notification. Give each question a short header and 2-4 options with a label and a \
         description (the user can still answer freely); set `multiSelect` to allow several choices."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(json!({"questions": questions_schema(true)}), &["questions"])
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Posting
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let questions = try_arg!(required_array(&args, "questions"));
            try_arg!(parse_questions(questions, true));
            let receipt = json!({
                "type": "ask_user_question",
                "version": 2,
                "toolCallId": context.call_id,
                "questions": questions,
                "message": POSTED,
            });
            ToolResult::ok(receipt.to_string())
        })
    }
}

/// The JSON Schema of `questions`; `complete` requires every field Letta 0.34's receipt has
/// (`header`, and options with a `description`).
fn questions_schema(complete: bool) -> Value {
    let (question_required, option_required) = if complete {
        (
            json!(["question", "header", "options"]),
            json!(["label", "description"]),
        )
    } else {
        (json!(["question"]), json!(["label"]))
    };
    json!({
        "type": "array",
        "minItems": 1,
        "description": "The questions to ask.",
        "items": {
            "type": "object",
            "properties": {
                "question": {"type": "string", "description": "The complete question, ending with a question mark."},
                "header": {"type": "string", "description": "A very short label for the question (at most 12 characters)."},
                "options": {
                    "type": "array",
                    "description": "The choices to offer.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "label": {"type": "string", "description": "The choice, in 1-5 words."},
                            "description": {"type": "string", "description": "What the choice means."}
                        },
                        "required": option_required,
                        "additionalProperties": false
                    }
                },
                "multiSelect": {"type": "boolean", "description": "Allow choosing several options (default false)."}
            },
            "required": question_required,
            "additionalProperties": false
        }
    })
}

/// Validates the questions and returns their texts; `complete` also requires what
/// [`questions_schema`] requires then, and a boolean `multiSelect` if given.
fn parse_questions(questions: &[Value], complete: bool) -> Result<Vec<&str>, String> {
    if questions.is_empty() {
        return Err("`questions` must contain at least one question.".into());
    }
    let mut texts = Vec::new();
    for (index, question) in questions.iter().enumerate() {
        let Value::Object(question) = question else {
            return Err(format!(
                "questions[{index}] must be an object with a `question` string."
            ));
        };
        match question.get("question") {
            Some(Value::String(text)) if !text.trim().is_empty() => texts.push(text.as_str()),
            _ => {
                return Err(format!("questions[{index}].question must be a non-empty string."));
            }
        }
        if complete {
            if !matches!(question.get("header"), Some(Value::String(_))) {
                return Err(format!("questions[{index}].header must be a string."));
            }
            if !matches!(question.get("multiSelect"), None | Some(Value::Bool(_))) {
                return Err(format!("questions[{index}].multiSelect must be a boolean."));
            }
        }
        match question.get("options") {
            None | Some(Value::Null) if !complete => {}
            Some(Value::Array(options)) => {
                for (option_index, option) in options.iter().enumerate() {
                    let described = !complete || matches!(option.get("description"), Some(Value::String(_)));
                    if !matches!(option.get("label"), Some(Value::String(_))) || !described {
                        let fields = if complete {
                            "`label` and `description` strings"
                        } else {
                            "a `label` string"
                        };
                        return Err(format!(
                            "questions[{index}].options[{option_index}] must be an object with {fields}."
                        ));
                    }
                }
            }
            _ => {
                return Err(format!("questions[{index}].options must be an array."));
            }
        }
    }
    Ok(texts)
}

/// An answer as text: strings as they are, lists joined with `, `.
fn answer_text(answer: &Value) -> String {
    match answer {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(answer_text).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
