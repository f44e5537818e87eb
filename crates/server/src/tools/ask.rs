//! `AskUserQuestion`: asks the user multiple-choice questions; the controller fills in `answers`.

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
                "questions": {
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
                                    "required": ["label"],
                                    "additionalProperties": false
                                }
                            },
                            "multiSelect": {"type": "boolean", "description": "Allow choosing several options (default false)."}
                        },
                        "required": ["question"],
                        "additionalProperties": false
                    }
                },
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
            let questions = try_arg!(parse_questions(try_arg!(required_array(&args, "questions"))));
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

/// Validates the questions and returns their texts.
fn parse_questions(questions: &[Value]) -> Result<Vec<&str>, String> {
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
        match question.get("options") {
            None | Some(Value::Null) => {}
            Some(Value::Array(options)) => {
                for (option_index, option) in options.iter().enumerate() {
                    if !matches!(option.get("label"), Some(Value::String(_))) {
                        return Err(format!(
                            "questions[{index}].options[{option_index}] must be an object with a `label` string."
                        ));
                    }
                }
            }
            Some(_) => {
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
